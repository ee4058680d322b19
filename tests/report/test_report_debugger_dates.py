"""The Markdown and text reports carry what a debugger log stated (as the HTML report does), and dump-level
times in the HTML report and index read as dates with the exact stored value in the tooltip. Expected values:
the T07 transcript as read by a person, and the real small dump's header."""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path

import pytest
from click.testing import CliRunner

from dbgauto.cli import cli
from dbgauto.engines.jobs import facts_from_dump
from dbgauto.report.render import ReportRenderer

TRANSCRIPTS = Path(__file__).resolve().parents[3] / "shared" / "transcripts"

# T07: !di and !analyze -v lines, copied from the log
T07_STATED = {
    "Build lab": "22621.1928.amd64fre.ni_release_svc_prod3.230622-0951",
    "Product": "WinNt",
    "Suite": "TerminalServer SingleUserTS",
    "Failure bucket": "0x139_1d_INVALID_BALANCED_TREE_Driver!unknown_function",
    "Bucket function offset": "0x11b1",
    "Failure hash": "{8ebd2998-ea64-b96c-aae8-2108d8c92247}",
    "Symbol": "Driver+11b1",
    "Module": "Driver",
    "Image": "Driver.sys",
    "Followup": "MachineOwner",
    "Dump attributes": "0x800",
    "Exception code": "0xc0000409",
    "Exception address": "fffff807`1b09aae3",
}


def _md_unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def test_md_and_txt_state_debugger_facts(tmp_path: Path) -> None:
    log = next(TRANSCRIPTS.glob("T07_*.log"), None)
    if log is None:
        pytest.skip("T07 transcript not available")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", "--from-log", str(log), "-o", str(out), "-f", "md", "-f", "txt"])
    assert result.exit_code == 0, result.output
    (md,) = out.glob("*.md")
    (txt,) = out.glob("*.txt")
    md_rows = {}
    for line in md.read_text(encoding="utf-8").split("## What the debugger stated", 1)[1].splitlines():
        m = re.fullmatch(r"\| (.+?) \| (.*) \|", line)
        if m and m.group(1) != "---":
            md_rows[m.group(1)] = _md_unescape(m.group(2))
    txt_rows = {}
    for line in txt.read_text(encoding="utf-8").split("What the debugger stated:", 1)[1].splitlines():
        m = re.fullmatch(r"  ([^:]+(?: \([^)]*\))?):\s+(.*)", line)
        if m:
            txt_rows[m.group(1)] = m.group(2)
    for label, value in T07_STATED.items():
        assert md_rows.get(label) == value, (label, md_rows.get(label))
        assert txt_rows.get(label) == value, (label, txt_rows.get(label))
    for text in (md.read_text(encoding="utf-8"), txt.read_text(encoding="utf-8")):
        assert "None" not in text
        assert "('" not in text


def test_dump_times_are_dates_with_raw_tooltip(triage_x64_path: Path, tmp_path: Path) -> None:
    facts = facts_from_dump(triage_x64_path)
    assert facts.crash_time is not None
    assert facts.source is not None
    assert facts.source.mtime is not None
    written = ReportRenderer().write_report_set([facts], tmp_path, ("html",))
    report = next(p for p in written if p.name != "index.html").read_text(encoding="utf-8")
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    for when in (facts.crash_time, facts.source.mtime):
        raw = when.isoformat()
        shown = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        assert f'<time datetime="{raw}" title="{raw}">{shown}</time>' in report
    raw = facts.crash_time.isoformat()
    assert f'title="{raw}">{facts.crash_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}</time>' in index
