"""Write outputs so that a crash never leaves a half-written file: temporary file, fsync, rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dbgauto.errors import OutputExistsError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "default_file_mode", "publish"]


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give (mkstemp makes 0600 files)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write(path: os.PathLike[str] | str, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file in ``path``'s folder; on success it replaces ``path`` in one rename.

    The temporary name starts with ``.`` and ends with ``.partial`` so scanners skip it. Without
    ``overwrite`` an existing ``path`` raises :class:`OutputExistsError` (checked before and, through a
    hard link, at the moment of publishing, so a concurrent writer cannot be clobbered).
    """
    target = Path(path)
    if not overwrite and target.exists():
        raise OutputExistsError(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp, target, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def publish(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move a complete temporary file into place in one step.

    Without ``overwrite`` a hard link publishes it, so an output that appeared meanwhile is never clobbered
    (:class:`OutputExistsError`); the caller removes ``tmp`` afterwards. Also used for files another program
    wrote (a debugger's ``.dump``)."""
    if overwrite:
        tmp.replace(target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputExistsError(target) from None
    except OSError:  # file systems without hard links
        if target.exists():
            raise OutputExistsError(target) from None
        tmp.replace(target)


def atomic_write_bytes(path: os.PathLike[str] | str, data: bytes, *, overwrite: bool = True) -> Path:
    with atomic_write(path, overwrite=overwrite) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: os.PathLike[str] | str, text: str, *, overwrite: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)
