"""One batch at a time per output folder: a file lock on ``DIR/.dbgauto.lock``.

Why filelock: the OS releases the lock when the holder dies (even on ``kill -9``), so there is no stale-PID
handling; a second run either waits (``wait=True``) or fails at once with :class:`CatalogLockedError` that
says who holds it (pid, host, start time, read from ``DIR/.dbgauto.lock.info``, written after acquiring).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from dbgauto.catalog.db import utc_now
from dbgauto.errors import CatalogLockedError
from dbgauto.util.atomic import atomic_write_text

__all__ = ["LOCK_NAME", "batch_lock", "holder_info"]

log = logging.getLogger(__name__)

LOCK_NAME = ".dbgauto.lock"


def holder_info(out_dir: Path) -> str:
    """Who holds (or last held) the lock, as text for an error message."""
    try:
        info = json.loads((out_dir / (LOCK_NAME + ".info")).read_text(encoding="utf-8"))
        return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
    except (OSError, ValueError):
        return "another process"


@contextlib.contextmanager
def batch_lock(out_dir: os.PathLike[str] | str, *, wait: bool = False, timeout: float | None = None) -> Iterator[Path]:
    """Hold ``DIR/.dbgauto.lock`` for the duration of a batch.

    ``wait=False``: raise :class:`CatalogLockedError` at once when held. ``wait=True``: block (up to
    ``timeout`` seconds, forever when ``None``), then raise if still held.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock_path = out / LOCK_NAME
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=(-1 if timeout is None else timeout) if wait else 0)
    except Timeout:
        how = f"still held after {timeout:g}s" if wait and timeout is not None else "held"
        raise CatalogLockedError(
            f"{out}: another dbgauto batch is running here ({holder_info(out)}; lock {lock_path} {how}); "
            "wait for it to finish, or pass --wait"
        ) from None
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now()}
        with contextlib.suppress(OSError):
            atomic_write_text(out / (LOCK_NAME + ".info"), json.dumps(info))  # a waiting run reads it
        log.debug("holding %s", lock_path)
        yield lock_path
    finally:
        lock.release()
