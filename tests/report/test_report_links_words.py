"""Per-dump HTML reports link to the index and to the same dump's other files; driver timestamps read as dates
with the raw TimeDateStamp in the tooltip; what a debugger log stated is shown. Expected values: the real small
dump's ground truth and the T03 transcript as read by a person."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dbgauto.analysis.from_log import facts_from_log
from dbgauto.debugtext import read_log
from dbgauto.engines.jobs import facts_from_dump
from dbgauto.report.render import ReportRenderer

TRANSCRIPTS = Path(__file__).resolve().parents[3] / "shared" / "transcripts"


def test_links_and_dates(triage_x64_path: Path, tmp_path: Path) -> None:
    facts = facts_from_dump(triage_x64_path)
    written = ReportRenderer().write_report_set([facts], tmp_path, ("html", "json", "md"))
    html = next(p for p in written if p.suffix == ".html" and p.name != "index.html")
    text = html.read_text(encoding="utf-8")
    nav = re.search(r'<nav class="links">(.*?)</nav>', text, re.S)
    assert nav is not None
    hrefs = re.findall(r'href="([^"]+)"', nav.group(1))
    assert hrefs == ["index.html", f"{html.stem}.json", f"{html.stem}.md"]
    for href in hrefs:
        assert (tmp_path / href).is_file()
    stamped = next(d for d in facts.drivers if d.timestamp)
    when = datetime.fromtimestamp(stamped.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert f'<td title="TimeDateStamp 0x{stamped.timestamp:08x}">{when}</td>' in text


def test_debugger_facts_are_shown() -> None:
    path = next(TRANSCRIPTS.glob("T03_*.log"), None)
    if path is None:
        pytest.skip("T03 transcript not available")
    html = ReportRenderer().render_dump(facts_from_log(read_log(path), source=path), "html")
    for expected in ("2600.xpsp_sp2_rtm.040803-2158", "0xC_mydriver+199e", "bac9199e", "cagou-geral.dmp"):
        assert expected in html
