"""Publish many report files at once: temp files first, one durability pass, then the renames.

``dbgauto.util.atomic.atomic_write`` fsyncs each file as it is written; for a report set of thousands of
files that wait dominates (measured here: ~5 ms per file right after the write, ~0.4 ms when the same
fsyncs run after all files were written, since the kernel has written most data back by then). The
guarantee is the same: each file is written to ``.<name>.<random>.partial`` in the target folder, made
durable (fsync), then renamed over the target, so a reader sees the old file or the new one, never half
of one. Nothing is renamed if any write fails. Temp names and file modes are atomic_write's (the umask's
mode applied by the OS, not mkstemp's 0600), so published reports are readable like any other output.
A batch worker keeps one set open across a chunk of dumps (:func:`dbgauto.batch.tasks.run_tasks`): one
durability pass per chunk instead of one fsync per file as it is written. Windows: the durability pass opens each
temp file read-write (``FlushFileBuffers`` refuses a read-only
handle), and a report held open by Excel or a scanner is retried, then named in an OutputBusyError.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from dbgauto.report.names import inside
from dbgauto.util import fs

__all__ = ["OutputSet"]


class OutputSet:
    """A context manager: :meth:`add` writes a temp file; leaving the block without error publishes all."""

    def __init__(self, folder: os.PathLike[str] | str, *, sync_early: bool = False) -> None:
        """``sync_early``: each temp file is fsynced by a helper thread as soon as it is written, so the wait
        overlaps the caller's next work (a batch worker rendering the next dump); :meth:`commit` then only waits
        for what is left. Same guarantee: nothing is renamed before every file is durable."""
        self.folder = Path(folder)
        self._pending: list[tuple[Path, Path]] = []
        self._early = sync_early
        self._queue: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._syncer: threading.Thread | None = None
        self._synced: dict[Path, OSError | None] = {}  # temp file -> None (durable) or the fsync's error

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
        if self._early:
            if self._syncer is None:
                self._syncer = threading.Thread(target=self._sync_loop, name="dbgauto-output-sync", daemon=True)
                self._syncer.start()
            self._queue.put(tmp)
        return target

    def _sync_loop(self) -> None:
        while (tmp := self._queue.get()) is not None:
            try:
                fs.fsync_path(tmp)
            except OSError as exc:  # reported by commit for a file still pending (a rolled-back one is gone)
                self._synced[tmp] = exc
            else:
                self._synced[tmp] = None

    def _stop_syncer(self) -> None:
        if self._syncer is not None:
            self._queue.put(None)
            self._syncer.join()
            self._syncer = None

    def mark(self) -> int:
        """A point to :meth:`rollback` to: the files added after it can be dropped (one dump's reports, when a
        later one of its formats fails in a set that spans many dumps)."""
        return len(self._pending)

    def rollback(self, mark: int) -> None:
        """Drop (and delete the temp files of) everything added after ``mark``; nothing was published yet."""
        for tmp, _ in self._pending[mark:]:
            with contextlib.suppress(OSError):  # gone, or held by a scanner
                tmp.unlink()
        del self._pending[mark:]

    def __len__(self) -> int:
        return len(self._pending)

    def commit(self) -> list[Path]:
        """fsync every temp file, rename each over its target, fsync the folder."""
        published = []
        try:
            self._stop_syncer()
            for tmp, _ in self._pending:
                early = self._synced.pop(tmp, False)
                if early is False:  # not synced early (or no helper thread)
                    fs.fsync_path(tmp)
                elif early is not None:
                    raise early
            for tmp, target in self._pending:
                fs.replace(tmp, target)  # OutputBusyError names a report held open past the retries
                published.append(target)
        except BaseException:
            self.abort()  # no .partial files left behind; files already renamed stay (each one complete)
            raise
        self._pending.clear()
        self._synced.clear()
        fs.fsync_dir(self.folder)
        return published

    def abort(self) -> None:
        self._stop_syncer()
        self._synced.clear()
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
