"""Untrusted text reaches no terminal or report raw: ESC/CSI/OSC, NUL, C0/C1, CR and bidi overrides are escaped;
log lines users read carry no ``INFO dbgauto.batch:`` prefix; progress rows name folder, file and stages."""

from __future__ import annotations

import errno
import logging

import pytest

from dbgauto.batch.progress import row_label
from dbgauto.batch.tasks import TaskSpec
from dbgauto.cli import UserFormatter
from dbgauto.util.textsafe import os_reason, terminal, terminal_line, visible


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # CSI
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # OSC set-title, BEL-terminated
        ("a\x00b", "a\\x00b"),
        ("\x9b2J", "\\x9b2J"),  # C1 CSI
        ("exe.sys\u202eexe", "exe.sys\\u202eexe"),  # right-to-left override
        ("a\u2066b\u2069", "a\\u2066b\\u2069"),  # isolates
        ("line\rover", "line\\rover"),
        ("bad \udc80 utf16", "bad \\udc80 utf16"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("ünïcödé 日本", "ünïcödé 日本"),
    ],
)
def test_escapes(raw: str, shown: str) -> None:
    assert terminal(raw) == shown
    assert visible(raw) == shown


def test_one_line_escapes_newlines() -> None:
    assert terminal_line("a\nb\x1b") == "a\\nb\\x1b"


def test_os_reason_names_the_output_not_its_temporary(tmp_path: object) -> None:
    exc = PermissionError(errno.EACCES, "Permission denied", "/out/.report.html.k2x9a1b3.partial")
    assert os_reason(exc) == "/out/report.html: Permission denied"
    exc = OSError(errno.ENOSPC, "No space left on device", "/out/x.dmp")
    assert os_reason(exc) == "/out/x.dmp: No space left on device"
    assert os_reason(OSError(errno.EROFS, "Read-only file system"), "/ro/a") == "/ro/a: Read-only file system"


def test_user_log_lines() -> None:
    def fmt(level: int, msg: str, *, names: bool = False) -> str:
        rec = logging.LogRecord("dbgauto.batch", level, __file__, 1, msg, None, None)
        return UserFormatter(with_names=names).format(rec)

    assert fmt(logging.INFO, "[1/3] a.dmp: ok") == "[1/3] a.dmp: ok"
    assert fmt(logging.WARNING, "disk \x1b[2J") == "warning: disk \\x1b[2J"
    assert fmt(logging.INFO, "x", names=True) == "info dbgauto.batch: x"


def test_progress_rows_name_host_and_stages() -> None:
    a = TaskSpec(source="/dumps/hostA/MEMORY.DMP", size=1, mtime_ns=0, small_path="/o/s.dmp", report_dir="/o/r")
    b = TaskSpec(source="/dumps/hostB/MEMORY.DMP", size=1, mtime_ns=0, report_dir="/o/r")
    assert row_label(a) == "  hostA/MEMORY.DMP (hash, convert, report)"
    assert row_label(b) == "  hostB/MEMORY.DMP (hash, report)"
    evil = TaskSpec(source="/d/\x1b]0;x\x07.dmp", size=1, mtime_ns=0)
    assert "\x1b" not in row_label(evil)
