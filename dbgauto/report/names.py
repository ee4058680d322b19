"""Output file names built from dump content, made safe: they can never leave the output folder.

A dump's file name, a log's name or anything else read from the input may hold ``../``, separators of
either OS, control characters, lone surrogates or Windows reserved device names. :func:`safe_stem` keeps
only a conservative character set and :func:`inside` re-checks the final path against the folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Final

from dbgauto.analysis.facts import CrashFacts

__all__ = ["MAX_STEM", "inside", "output_stem", "report_stem", "safe_stem"]

MAX_STEM: Final = 80
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED: Final = frozenset(
    ["con", "prn", "aux", "nul", "conin$", "conout$"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)


def safe_stem(text: str, *, fallback: str = "dump") -> str:
    """A file-name stem from untrusted ``text``: last path component, ``[A-Za-z0-9._-]`` only, no leading dot."""
    last = re.split(r"[\\/]", text)[-1] if text else ""
    stem = _UNSAFE.sub("_", last).strip("._")[:MAX_STEM].strip("._")
    if not stem:
        return fallback
    if stem.split(".")[0].lower() in _RESERVED:
        stem = f"_{stem}"
    return stem


def output_stem(path: os.PathLike[str] | str) -> str:
    """The stem of every file made from one dump (small dump, reports): safe file name + 8 hex digits of the
    absolute path. Every host calls its dump MEMORY.DMP; the digest keeps their outputs apart, and the same source
    always maps to the same names (a rerun replaces, never duplicates). ``report`` and ``batch`` both use it."""
    p = Path(path)
    digest = hashlib.sha1(str(p.absolute()).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe_stem(p.stem or p.name)}-{digest}"


def report_stem(facts: CrashFacts) -> str:
    """The stem of a dump's report files: :func:`output_stem` of its source path; facts without a path (a pasted
    log) are named by their content."""
    src = facts.source
    if src is not None and src.path:
        return output_stem(src.path)
    digest = hashlib.sha256(repr(facts.to_dict()).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"crash-{digest}"


def inside(folder: Path, name: str) -> Path:
    """``folder / name`` after checking that it stays directly inside ``folder``: ``name`` must be one plain
    component (no separator of either OS, no drive, not ``.``/``..``). The check is lexical against the folder
    resolved once per process (a batch names thousands of files in a few folders); a link already at the name is
    replaced by the atomic rename, never written through."""
    base = _resolved_folder(os.path.abspath(folder))  # noqa: PTH100 (the cache key: no syscall per name)
    target = base / name
    if name in ("", ".", "..") or "/" in name or "\\" in name or target.parent != base or target.name != name:
        raise ValueError(f"output name {name!r} escapes {folder}")
    return target


@functools.lru_cache(maxsize=64)
def _resolved_folder(folder: str) -> Path:
    return Path(folder).resolve()
