"""The progress views print a failed dump as one line: file named once, error code kept, dump text literal."""

from __future__ import annotations

import io
import logging

import pytest

from dbgauto.batch.progress import LogProgress, RichProgress, failure_line
from dbgauto.batch.tasks import TaskSpec
from dbgauto.catalog.records import ResultRecord, SourceState

SRC = "/dumps/[bold]odd[/bold]/MEMORY.DMP"


def _failed() -> tuple[TaskSpec, ResultRecord]:
    spec = TaskSpec(source=SRC, size=1, mtime_ns=1)
    rec = ResultRecord(
        source=SourceState(SRC, 1, 1),
        status="failed",
        error_code="bad_signature",
        error_message=f"{SRC}: not a kernel dump: first bytes b'[red]MZ'\nsecond line",
    )
    return spec, rec


def test_failure_line_names_the_file_once() -> None:
    _, rec = _failed()
    line = failure_line(rec.source.path, rec.error_code, rec.error_message)
    assert line == f"{SRC}: [bad_signature] not a kernel dump: first bytes b'[red]MZ' second line"


def test_rich_view_keeps_the_code_and_prints_dump_text_literally() -> None:
    stream = io.StringIO()
    view = RichProgress(stream)
    spec, rec = _failed()
    view.begin(1)
    view.started(spec)
    view.finished(spec, rec)
    view.end()
    out = " ".join(stream.getvalue().split())  # rich wraps at the console width
    assert "failed " + failure_line(SRC, rec.error_code, rec.error_message) in out
    assert out.count("MEMORY.DMP:") == 1


def test_log_view_line(caplog: pytest.LogCaptureFixture) -> None:
    view = LogProgress()
    spec, rec = _failed()
    view.begin(1)
    with caplog.at_level(logging.INFO, logger="dbgauto.batch"):
        view.finished(spec, rec)
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.endswith(f"{SRC}: FAILED [bad_signature] not a kernel dump: first bytes b'[red]MZ' second line")


def test_rich_row_names_the_live_stage() -> None:
    view = RichProgress(io.StringIO())
    spec = TaskSpec(source="/dumps/hostA/MEMORY.DMP", size=1, mtime_ns=1, small_path="/out/x.dmp")
    view.begin(1)
    view.started(spec)
    view.stage(spec, "convert")
    (row,) = [t for t in view.bar.tasks if t.id != view.overall]
    assert row.description == "  hostA/MEMORY.DMP: convert (hash, convert)"
    view.end()
