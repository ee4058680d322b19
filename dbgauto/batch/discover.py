"""Find kernel dumps under folders by their first 8 bytes (PAGEDUMP / PAGEDU64), never by extension.

Why by signature: crash folders hold ``MEMORY.DMP``, ``Mini112424-01.dmp``, renamed copies and archives
side by side; the extension says nothing. Skipped: our own in-progress temp files (``.*.partial``, see
dbgauto.util.atomic), the batch output folder when it sits under a source, directory symlinks (loops).
A file named explicitly on the command line is always returned, dump or not, so its failure is reported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dbgauto.kdump.constants import SIGNATURE, VALID_DUMP32, VALID_DUMP64

__all__ = ["DUMP_SIGNATURES", "Found", "discover", "has_dump_signature", "is_temp_name"]

log = logging.getLogger(__name__)

DUMP_SIGNATURES = (SIGNATURE + VALID_DUMP32, SIGNATURE + VALID_DUMP64)  # the format layer's own


@dataclass(frozen=True, slots=True)
class Found:
    """A candidate dump: resolved absolute path, size and mtime at discovery, and whether it was named."""

    path: Path
    size: int
    mtime_ns: int
    explicit: bool = False


def is_temp_name(name: str) -> bool:
    """Our atomic-write temp files: ``.<target>.<random>.partial``."""
    return name.startswith(".") and name.endswith(".partial")


def has_dump_signature(path: os.PathLike[str] | str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) in DUMP_SIGNATURES
    except OSError:
        return False


def _walk(root: Path, exclude: tuple[Path, ...]) -> Iterator[os.DirEntry[str]]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    sub = Path(entry.path)
                    if sub.resolve() not in exclude:
                        subdirs.append(sub)
                elif entry.is_file(follow_symlinks=True) and not is_temp_name(entry.name):
                    yield entry
            except OSError as exc:
                log.warning("cannot stat %s: %s", entry.path, exc)
        stack.extend(reversed(subdirs))


def discover(
    sources: Iterable[os.PathLike[str] | str],
    *,
    exclude: Iterable[os.PathLike[str] | str] = (),
    since: datetime | None = None,
) -> list[Found]:
    """Every dump under ``sources`` (files and folders, recursively), sorted by path, without duplicates.

    ``since``: only files modified at or after that time. Raises ``FileNotFoundError`` for a source
    that does not exist (a usage error for the CLI).
    """
    excluded = tuple(Path(p).resolve() for p in exclude)
    since_ns = int(since.timestamp() * 1e9) if since is not None else None
    seen: dict[Path, Found] = {}
    for src in sources:
        root = Path(src)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder")
        if root.is_file():
            st = root.stat()
            path = root.resolve()
            if since_ns is None or st.st_mtime_ns >= since_ns:
                seen.setdefault(path, Found(path, st.st_size, st.st_mtime_ns, explicit=True))
            continue
        for entry in _walk(root, excluded):
            st = entry.stat(follow_symlinks=True)
            if since_ns is not None and st.st_mtime_ns < since_ns:
                continue
            path = Path(entry.path).resolve()
            if path in seen or not has_dump_signature(path):
                continue
            seen[path] = Found(path, st.st_size, st.st_mtime_ns)
    return sorted(seen.values(), key=lambda f: str(f.path))
