"""Portable positional file reads: the one way dbgauto reads a byte range of a dump without the mmap.

Why not always the mmap: conversion touches ~1,300 scattered pages of a dump that may be 256 GiB; a page fault
on a mapping pulls in neighbouring pages (fault-around, read-ahead), so the resident size grows by ~64 KiB per
page touched. A positional read fetches only the bytes asked for.

``os.pread`` and ``os.posix_fadvise`` do not exist on Windows: there, a lock-guarded seek + read on a file opened
in binary mode does the same job, and advice calls are skipped. Which side runs is chosen once
(:data:`HAVE_PREAD`), and both sides are tested on every OS by forcing the choice (``use_pread=False``).
"""

from __future__ import annotations

import os
import threading
from typing import Final

__all__ = ["HAVE_FADVISE", "HAVE_PREAD", "PositionalFile"]

HAVE_PREAD: Final = hasattr(os, "pread")
HAVE_FADVISE: Final = hasattr(os, "posix_fadvise")
_O_BINARY: Final = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


class PositionalFile:
    """A read-only file answering ``read_at(pos, size)``; safe to share between threads."""

    def __init__(self, path: os.PathLike[str] | str, *, use_pread: bool | None = None) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDONLY | _O_BINARY)
        self._pread = HAVE_PREAD if use_pread is None else (use_pread and HAVE_PREAD)
        self._lock = threading.Lock()

    def advise_random(self) -> None:
        """Tell the OS not to read ahead (POSIX only; a no-op elsewhere)."""
        if HAVE_FADVISE and self._fd is not None:
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)

    def advise_willneed(self, pos: int, size: int) -> None:
        """Start reading this range now (POSIX only; a no-op elsewhere). Advisory."""
        if HAVE_FADVISE and self._fd is not None:
            os.posix_fadvise(self._fd, pos, size, os.POSIX_FADV_WILLNEED)

    def read_at(self, pos: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``pos`` (fewer at the end of the file)."""
        fd = self._fd
        if fd is None:
            raise ValueError(f"{self.path}: file is closed")
        if self._pread:
            return os.pread(fd, size, pos)
        with self._lock:
            os.lseek(fd, pos, os.SEEK_SET)
            chunks = []
            while size > 0:
                chunk = os.read(fd, size)
                if not chunk:
                    break
                chunks.append(chunk)
                size -= len(chunk)
            return b"".join(chunks)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PositionalFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
