"""The debugger's symbol-path syntax (``_NT_SYMBOL_PATH``), parsed the way WinDbg and symchk read it.

Why our own parser: Windows engineers already have a symbol path, and dbgauto must read it unchanged on any
OS. Elements are separated by ``;``:

- ``srv*DS1*DS2*...*UPSTREAM`` (or ``symsrv*symsrv.dll*...``): a chain of stores, nearest first. A file found
  in a later store is copied into every earlier (downstream) local store. ``srv*URL`` alone uses the default
  downstream store; ``srv*DIR`` is a local symbol store.
- ``cache*DIR`` (``cache*`` alone: the default cache): a downstream store for every element to its right.
- anything else: a plain directory (flat files or a symbol-store layout).

Windows paths (``C:\\symbols``, ``\\\\server\\share``) are kept as Windows paths: they are never split on
``:`` or ``\\``, and on a non-Windows host they are reported unusable instead of being read as relative
POSIX names. Nothing here touches the network; :attr:`SymbolPath.uses_network` tells whether anything would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from dbgauto.util.usercache import user_cache_root

__all__ = [
    "ENV_VARS",
    "PathElement",
    "ResolvedSymbolPath",
    "SymbolPath",
    "default_cache_dir",
    "is_url",
    "local_dir",
    "parse_symbol_path",
    "resolve_symbol_path",
]

ENV_VARS = ("DBGAUTO_SYMBOL_PATH", "_NT_SYMBOL_PATH")
"""Environment variables read, in order, when no ``--symbols`` argument is given."""

_MAX_ELEMENTS = 256


def is_url(store: str) -> bool:
    """True for an HTTP(S) symbol server."""
    low = store.lower()
    return low.startswith(("http://", "https://"))


def _is_windows_path(store: str) -> bool:
    w = PureWindowsPath(store)
    return bool(w.drive) or store.startswith(("\\\\", "//"))


def local_dir(store: str, *, windows: bool | None = None) -> Path | None:
    """The local directory a store names on this host; None for a URL or a Windows path on a POSIX host."""
    if is_url(store) or not store:
        return None
    on_windows = sys.platform == "win32" if windows is None else windows
    if _is_windows_path(store) and not on_windows:
        return None
    return Path(store).expanduser()


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where downloaded or converted symbols go when the path names no downstream store."""
    e = os.environ if env is None else env
    if e.get("DBGAUTO_SYMBOL_CACHE"):
        return Path(e["DBGAUTO_SYMBOL_CACHE"])
    return user_cache_root(e) / "symbols"


@dataclass(frozen=True, slots=True)
class PathElement:
    """One ``;``-separated element: stores searched nearest first, plus the cache that applies to it.

    ``kind`` is ``"dir"`` (a plain directory: flat or store layout) or ``"srv"`` (a symbol-server chain).
    ``stores`` are strings exactly as written (a URL, a POSIX path or a Windows path); an empty string means
    "the default downstream store" (``srv**URL``)."""

    kind: str
    stores: tuple[str, ...]
    cache: str | None = None

    @property
    def uses_network(self) -> bool:
        return any(is_url(s) for s in self.stores)


@dataclass(frozen=True, slots=True)
class SymbolPath:
    """A parsed symbol path; ``text`` is what was parsed, ``warnings`` what was set aside and why."""

    text: str
    elements: tuple[PathElement, ...]
    warnings: tuple[str, ...] = ()

    @property
    def uses_network(self) -> bool:
        return any(e.uses_network for e in self.elements)

    @property
    def urls(self) -> list[str]:
        return [s for e in self.elements for s in e.stores if is_url(s)]

    def __str__(self) -> str:
        return self.text


def _split_stores(rest: list[str]) -> tuple[str, ...]:
    return tuple(s.strip() for s in rest)


def parse_symbol_path(text: str) -> SymbolPath:
    """Parse ``text``; never raises (unknown forms become plain directories, oddities become warnings)."""
    elements: list[PathElement] = []
    warnings: list[str] = []
    cache: str | None = None
    parts = [p.strip() for p in text.split(";")]
    if len(parts) > _MAX_ELEMENTS:
        warnings.append(f"symbol path has {len(parts)} elements; only the first {_MAX_ELEMENTS} are used")
        parts = parts[:_MAX_ELEMENTS]
    for part in parts:
        if not part:
            continue
        pieces = part.split("*")
        head = pieces[0].strip().lower()
        if head == "cache":
            cache = pieces[1].strip() if len(pieces) > 1 and pieces[1].strip() else ""
            if len(pieces) > 2:
                warnings.append(f"{part!r}: text after the cache directory is ignored")
            continue
        if head == "srv":
            stores = _split_stores(pieces[1:])
        elif head == "symsrv":
            if len(pieces) < 2 or pieces[1].strip().lower() != "symsrv.dll":
                dll = pieces[1] if len(pieces) > 1 else ""
                warnings.append(f"{part!r}: symbol server DLL {dll!r} read as symsrv.dll")
            stores = _split_stores(pieces[2:])
        else:
            if "*" in part:
                warnings.append(f"{part!r}: unknown element form, read as a directory")
            elements.append(PathElement("dir", (part,), cache))
            continue
        if not stores or all(not s for s in stores):
            warnings.append(f"{part!r}: no store named; element ignored")
            continue
        if len(stores) == 1 and is_url(stores[0]):
            stores = ("", stores[0])  # srv*URL: the default downstream store
        elements.append(PathElement("srv", stores, cache))
    return SymbolPath(text, tuple(elements), tuple(warnings))


@dataclass(frozen=True, slots=True)
class ResolvedSymbolPath:
    """The path in force and where it came from (``argument``, an environment variable name, or ``default``)."""

    path: SymbolPath
    source: str
    cache_dir: Path = field(default_factory=default_cache_dir)


def resolve_symbol_path(argument: str | None = None, env: Mapping[str, str] | None = None) -> ResolvedSymbolPath:
    """``--symbols`` if given, else ``DBGAUTO_SYMBOL_PATH``, else ``_NT_SYMBOL_PATH``, else the local cache only.

    The default never uses the network: air-gapped sites must not see a request they did not ask for."""
    e = os.environ if env is None else env
    cache = default_cache_dir(e)
    if argument is not None:
        return ResolvedSymbolPath(parse_symbol_path(argument), "argument", cache)
    for name in ENV_VARS:
        value = e.get(name)
        if value:
            return ResolvedSymbolPath(parse_symbol_path(value), name, cache)
    return ResolvedSymbolPath(parse_symbol_path(str(cache)), "default", cache)
