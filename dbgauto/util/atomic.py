"""Write outputs so that a crash never leaves a half-written file: temporary file, fsync, rename.

Portable by construction (see :mod:`dbgauto.util.fs`): the temp file gets the umask's mode from the OS
(no process-global ``os.umask`` calls), the rename is retried while another program holds the target open
(Windows), and paths beyond MAX_PATH get the ``\\\\?\\`` prefix on Windows (:func:`dbgauto.util.paths.long_path`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dbgauto.errors import OutputExistsError
from dbgauto.util import fs
from dbgauto.util.paths import long_path

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "default_file_mode", "publish"]


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives here, read without changing the umask.

    Linux reports the umask in /proc/self/status; elsewhere a probe file is created (and removed) in the
    temp folder and its mode read back. Windows: 0o666 (modes there only carry the read-only bit).
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    import tempfile

    folder = tempfile.gettempdir()
    fd, probe = fs.create_temp(folder, "dbgauto-mode-probe")
    try:
        return os.fstat(fd).st_mode & 0o777
    finally:
        os.close(fd)
        probe.unlink()


@contextlib.contextmanager
def atomic_write(path: os.PathLike[str] | str, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file in ``path``'s folder; on success it replaces ``path`` in one rename.

    The temporary name starts with ``.`` and ends with ``.partial`` so scanners skip it. Without
    ``overwrite`` an existing ``path`` raises :class:`OutputExistsError` (checked before and, through a
    hard link, at the moment of publishing, so a concurrent writer cannot be clobbered). A target held
    open by another program past the retries raises :class:`~dbgauto.errors.OutputBusyError`.
    """
    target = long_path(Path(path))
    if not overwrite and target.exists():
        raise OutputExistsError(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = fs.create_temp(target.parent, target.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp, target, overwrite=overwrite)
    finally:
        with contextlib.suppress(OSError):  # gone, or held by a scanner: never mask the real error
            tmp.unlink()


def publish(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move a complete temporary file into place in one step.

    Without ``overwrite`` a hard link publishes it, so an output that appeared meanwhile is never clobbered
    (:class:`OutputExistsError`); the caller removes ``tmp`` afterwards. Also used for files another program
    wrote (a debugger's ``.dump``). With ``overwrite`` the rename is retried while the target is held open.
    """
    if overwrite:
        fs.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputExistsError(target) from None
    except OSError:  # file systems without hard links
        if target.exists():
            raise OutputExistsError(target) from None
        fs.replace(tmp, target)


def atomic_write_bytes(path: os.PathLike[str] | str, data: bytes, *, overwrite: bool = True) -> Path:
    with atomic_write(path, overwrite=overwrite) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: os.PathLike[str] | str, text: str, *, overwrite: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)
