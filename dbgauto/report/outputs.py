"""Publish many report files at once: temp files first, one durability pass, then the renames.

``dbgauto.util.atomic.atomic_write`` fsyncs each file as it is written; for a report set of thousands of
files that wait dominates (measured here: ~5 ms per file right after the write, ~0.4 ms when the same
fsyncs run after all files were written, since the kernel has written most data back by then). The
guarantee is the same: each file is written to ``.<name>.<random>.partial`` in the target folder, made
durable (fsync), then renamed over the target, so a reader sees the old file or the new one, never half
of one. Nothing is renamed if any write fails. Temp names and file modes are atomic_write's (the umask's
mode applied by the OS, not mkstemp's 0600), so published reports are readable like any other output.
Windows: the durability pass opens each temp file read-write (``FlushFileBuffers`` refuses a read-only
handle), and a report held open by Excel or a scanner is retried, then named in an OutputBusyError.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from dbgauto.report.names import inside
from dbgauto.util import fs

__all__ = ["OutputSet"]


class OutputSet:
    """A context manager: :meth:`add` writes a temp file; leaving the block without error publishes all."""

    def __init__(self, folder: os.PathLike[str] | str) -> None:
        self.folder = Path(folder)
        self._pending: list[tuple[Path, Path]] = []

    def __enter__(self) -> OutputSet:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def add(self, name: str, data: bytes | Iterable[bytes]) -> Path:
        """Write ``data`` (bytes, or chunks of bytes written as they come: a large file is never held whole)
        for ``folder/name`` (``name`` must stay inside the folder); returns the final path."""
        target = inside(self.folder, name)
        fd, tmp = fs.create_temp(self.folder, target.name)
        try:
            with os.fdopen(fd, "wb") as fh:
                if isinstance(data, bytes | bytearray | memoryview):
                    fh.write(data)
                else:
                    for chunk in data:
                        fh.write(chunk)
        except BaseException:
            with contextlib.suppress(OSError):  # gone, or held by a scanner
                tmp.unlink()
            raise
        self._pending.append((tmp, target))
        return target

    def commit(self) -> list[Path]:
        """fsync every temp file, rename each over its target, fsync the folder."""
        published = []
        try:
            for tmp, _ in self._pending:
                fs.fsync_path(tmp)
            for tmp, target in self._pending:
                fs.replace(tmp, target)  # OutputBusyError names a report held open past the retries
                published.append(target)
        except BaseException:
            self.abort()  # no .partial files left behind; files already renamed stay (each one complete)
            raise
        self._pending.clear()
        fs.fsync_dir(self.folder)
        return published

    def abort(self) -> None:
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):  # gone, or held by a scanner
                tmp.unlink()
        self._pending.clear()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
