"""Portable file access: positional reads, temp files, durability and renames that work on Windows too.

Why one module: every Windows hazard of plain file calls sits here, behind a seam that both sides run on
any OS (the Windows side is forced by an argument or by the POSIX-removed test job, see tests/conftest.py).

* Positional reads. Conversion touches ~1,300 scattered pages of a dump that may be 256 GiB; a page fault
  on a mapping pulls in neighbouring pages (fault-around, read-ahead), so the resident size grows by ~64 KiB
  per page touched. A positional read fetches only the bytes asked for. ``os.pread`` and
  ``os.posix_fadvise`` do not exist on Windows: there, a lock-guarded seek + read on a file opened in binary
  mode does the same job, and advice calls are skipped (:data:`HAVE_PREAD`, ``use_pread=False``).
* Temp files are created with ``os.open(..., 0o666)`` so the OS applies the umask itself: no
  ``os.umask`` dance (process-global, racy with threads, meaningless on Windows) and no mkstemp 0600 files.
* ``fsync`` needs a descriptor with write access on Windows (``FlushFileBuffers`` refuses a read-only
  handle): :func:`fsync_path` opens read-write.
* Who else may write a folder: POSIX answers with the owner id and the mode bits (``os.geteuid``); Windows has
  neither in ``stat`` and keeps per-user folders private by their ACL (:func:`others_can_write`,
  :data:`HAVE_GETEUID`).
* ``os.replace``/``os.unlink`` fail with ``PermissionError`` on Windows while Excel, an antivirus scanner or
  the search indexer holds the file: :func:`replace` and :func:`unlink` retry with backoff, then raise
  :class:`~dbgauto.errors.OutputBusyError` naming the file. :data:`replace_op`/:data:`unlink_op` are the
  seam tests use.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from dbgauto.errors import OutputBusyError

__all__ = [
    "BUSY_ATTEMPTS",
    "HAVE_FADVISE",
    "HAVE_GETEUID",
    "HAVE_PREAD",
    "PositionalFile",
    "create_temp",
    "fsync_dir",
    "fsync_path",
    "others_can_write",
    "replace",
    "retry_busy",
    "unlink",
]

HAVE_PREAD: Final = hasattr(os, "pread")
HAVE_FADVISE: Final = hasattr(os, "posix_fadvise")
HAVE_GETEUID: Final = hasattr(os, "geteuid")
O_BINARY: Final = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
BUSY_ATTEMPTS: Final = 8  # 0.05 s doubling to 3.2 s: ~6.4 s in all, longer than an on-access scan of a report
BUSY_FIRST_DELAY: Final = 0.05
_MAX_TEMP_TRIES: Final = 100
T = TypeVar("T")


class PositionalFile:
    """A read-only file answering ``read_at(pos, size)``; safe to share between threads."""

    def __init__(self, path: os.PathLike[str] | str, *, use_pread: bool | None = None) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDONLY | O_BINARY)
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

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PositionalFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def others_can_write(st: os.stat_result) -> bool:
    """Whether a user other than this process's may write what ``st`` describes: on POSIX, owned by another user
    or writable by group or others. Windows (no owner id in ``stat``): False, the per-user profile folders
    (``%LOCALAPPDATA%``) carrying the user's own ACL."""
    if not HAVE_GETEUID:
        return False
    return st.st_uid != os.geteuid() or bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def create_temp(folder: os.PathLike[str] | str, name: str) -> tuple[int, Path]:
    """Create ``folder/.<name>.<random>.partial`` exclusively; returns (write descriptor, path).

    Mode 0o666 minus the umask, applied by the OS (what ``open(path, "w")`` gives), without touching the
    process umask. The descriptor is not inherited by child processes (PEP 446).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_BINARY
    for _ in range(_MAX_TEMP_TRIES):
        tmp = Path(folder) / f".{name}.{secrets.token_hex(4)}.partial"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder}: no free temporary name for {name} after {_MAX_TEMP_TRIES} tries")


def fsync_path(path: os.PathLike[str] | str) -> None:
    """Make a written file durable by path. Opened read-write: Windows cannot flush a read-only handle."""
    fd = os.open(path, os.O_RDWR | O_BINARY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: os.PathLike[str] | str) -> None:
    """Make renames in ``folder`` durable where the OS allows opening a folder (not Windows: skipped)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def retry_busy(
    action: str,
    path: os.PathLike[str] | str,
    fn: Callable[[], T],
    *,
    attempts: int = BUSY_ATTEMPTS,
    first_delay: float = BUSY_FIRST_DELAY,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn``; on ``PermissionError`` (a sharing violation on Windows) retry with doubling delays.

    After ``attempts`` failures: :class:`OutputBusyError` naming ``path`` and the last reason.
    """
    delay = first_delay
    last: PermissionError | None = None
    for attempt in range(max(1, attempts)):
        try:
            return fn()
        except PermissionError as exc:
            last = exc
            if attempt + 1 < attempts:
                sleep(delay)
                delay *= 2
    assert last is not None
    raise OutputBusyError(path, action, max(1, attempts), last.strerror or str(last)) from last


# The operations the retrying wrappers call: module attributes, so a test can stand in a sharing violation
# (PermissionError, what Windows raises while another program holds the file) for every caller at once.
replace_op: Callable[[os.PathLike[str] | str, os.PathLike[str] | str], None] = os.replace
unlink_op: Callable[[os.PathLike[str] | str], None] = os.unlink
busy_sleep: Callable[[float], None] = time.sleep


def replace(
    src: os.PathLike[str] | str,
    dst: os.PathLike[str] | str,
    *,
    attempts: int = BUSY_ATTEMPTS,
) -> None:
    """``os.replace(src, dst)``, retried while ``dst`` is held open elsewhere; OutputBusyError names ``dst``."""
    retry_busy("replace", dst, lambda: replace_op(src, dst), attempts=attempts, sleep=busy_sleep)


def unlink(path: os.PathLike[str] | str, *, attempts: int = BUSY_ATTEMPTS, missing_ok: bool = False) -> None:
    """``os.unlink(path)``, retried while the file is held open elsewhere; OutputBusyError names it."""

    def once() -> None:
        try:
            unlink_op(path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    retry_busy("delete", path, once, attempts=attempts, sleep=busy_sleep)
