"""Batch progress: a rich display on a terminal, plain log lines otherwise (Task Scheduler, cron, CI).

Why two: rich redraws a live area, which garbles log files; unattended runs want one line per event.
The rich view has an overall bar with ETA and one row per dump in flight (its elapsed time), so a long
conversion is visible as it runs (the task runs in another process, so there is no byte-level counter).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, Protocol, TextIO

from dbgauto.batch.tasks import TaskSpec
from dbgauto.catalog.records import ResultRecord
from dbgauto.util.textsafe import terminal_line

__all__ = ["LogProgress", "Progress", "RichProgress", "failure_line", "make_progress"]

log = logging.getLogger("dbgauto.batch")


class Progress(Protocol):
    def begin(self, total: int) -> None: ...
    def started(self, spec: TaskSpec) -> None: ...
    def finished(self, spec: TaskSpec, rec: ResultRecord) -> None: ...
    def end(self) -> None: ...


def _failure(source: str, code: str | None, message: str | None) -> str:
    """``[code] message`` on one line, without the file name that error messages usually start with."""
    msg = (message or "").replace("\n", " ")
    return f"[{code}] {msg.removeprefix(source + ': ').removeprefix(source + ', ')}"


def failure_line(source: str, code: str | None, message: str | None) -> str:
    """``SOURCE: [code] message``: one failed dump, the file named once."""
    return f"{source}: {_failure(source, code, message)}"


def _describe(rec: ResultRecord) -> str:
    if rec.ok:
        parts = ["ok"]
        if rec.small_path:
            parts.append(f"small dump {Path(rec.small_path).name}")
        if rec.total_seconds is not None:
            parts.append(f"{rec.total_seconds:.2f}s")
        return ", ".join(parts)
    return "FAILED " + _failure(rec.source.path, rec.error_code, rec.error_message)


class LogProgress:
    """One log line per finished dump, with a running count (INFO level on the dbgauto.batch logger)."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.t0 = time.monotonic()

    def begin(self, total: int) -> None:
        self.total = total
        self.t0 = time.monotonic()

    def started(self, spec: TaskSpec) -> None:
        log.debug("start %s", spec.source)

    def stage(self, spec: TaskSpec, name: str) -> None:
        log.debug("%s: %s", spec.source, name)

    def finished(self, spec: TaskSpec, rec: ResultRecord) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.t0
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        log.info("[%d/%d, eta %.0fs] %s: %s", self.done, self.total, eta, spec.source, _describe(rec))

    def end(self) -> None:
        pass


class RichProgress:
    """rich.progress: an overall bar (with ETA) and a spinner row per dump in flight."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar

        self.escape = escape

        self.console = Console(file=stream)
        self.bar = RichBar(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.overall: Any = None
        self.rows: dict[str, Any] = {}

    def begin(self, total: int) -> None:
        self.bar.start()
        self.overall = self.bar.add_task("dumps", total=total)

    def started(self, spec: TaskSpec) -> None:
        old = self.rows.pop(spec.source, None)  # re-run after a worker died: one row per dump
        if old is not None:
            self.bar.remove_task(old)
        self.rows[spec.source] = self.bar.add_task(self.escape(row_label(spec)), total=None)

    def stage(self, spec: TaskSpec, name: str) -> None:
        """A running dump moved to another stage (local pool only): the row names it."""
        row = self.rows.get(spec.source)
        if row is not None:
            self.bar.update(row, description=self.escape(row_label(spec, name)))

    def finished(self, spec: TaskSpec, rec: ResultRecord) -> None:
        row = self.rows.pop(spec.source, None)
        if row is not None:
            self.bar.remove_task(row)
        self.bar.advance(self.overall)
        if not rec.ok:  # escaped: "[code]" and text from the dump must not be read as rich markup
            line = failure_line(spec.source, rec.error_code, rec.error_message)
            self.console.print(f"[red]failed[/red] {self.escape(terminal_line(line))}", markup=True)

    def end(self) -> None:
        self.bar.stop()


def row_label(spec: TaskSpec, current: str | None = None) -> str:
    """A progress row: the folder (host) and file name, and the stages the task runs — three ``MEMORY.DMP`` rows
    from three hosts read ``hostA/MEMORY.DMP (hash, convert, report)``, not three identical names. With the
    stage the worker reports, that stage leads: ``hostA/MEMORY.DMP: convert (hash, convert, report)``."""
    path = Path(spec.source.replace("\\", "/"))
    where = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    stages = ["hash"] + (["convert"] if spec.small_path else []) + (["report"] if spec.report_dir else [])
    now = f": {current}" if current else ""
    return terminal_line(f"  {where}{now} ({', '.join(stages)})")


def make_progress(*, enabled: bool | None = None, stream: TextIO | None = None) -> Progress:
    """Rich when ``stream`` (stderr) is a terminal (or ``enabled``), plain log lines otherwise."""
    stream = stream or sys.stderr
    use_rich = stream.isatty() if enabled is None else enabled
    return RichProgress(stream) if use_rich else LogProgress()
