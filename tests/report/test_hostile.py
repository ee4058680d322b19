"""Hostile text from a dump (markup, template syntax, ../, control characters, invalid UTF-16) stays inert."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dbgauto.analysis.facts import CrashFacts
from dbgauto.report.csvout import csv_text
from dbgauto.report.names import inside, report_stem, safe_stem
from dbgauto.report.render import ReportRenderer, write_csv

CONTROL = {chr(c) for c in range(0x20) if chr(c) not in "\n\t\r"} | {"\x7f"}


def _no_raw_controls(text: str) -> None:
    assert not CONTROL & set(text)
    assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def test_html_escapes_everything_and_runs_nothing(tmp_path: Path, evil: CrashFacts, html_check: Callable) -> None:
    r = ReportRenderer()
    report = r.write_dump_report(evil, tmp_path, "html")
    index = r.write_index([evil], tmp_path)
    for path in (report, index):
        raw = path.read_bytes()
        page = raw.decode("utf-8")  # strict: no lone surrogates reach the file
        _no_raw_controls(page)
        parsed = html_check(page)
        assert "<script>alert(1)</script>" in parsed.visible  # shown as text ...
        assert "<script>alert" not in page  # ... because it is escaped in the markup
        assert "{{ 'PW' ~ 'NED' }}" in parsed.visible
        assert "PWNED" not in page
        assert "\\x00" in parsed.visible
        assert "\\x1b" in parsed.visible
        assert "\\udc80" in parsed.visible
        assert all(tag != "script" or path == index for tag, _, _ in parsed.attrs)
        for _, attr, _ in parsed.attrs:
            assert not attr.startswith("on")
    assert len(html_check(index.read_text(encoding="utf-8")).scripts) == 1  # only the index's own script


def test_raw_output_cannot_break_out_of_its_block(tmp_path: Path, evil: CrashFacts, html_check: Callable) -> None:
    page = ReportRenderer().write_dump_report(evil, tmp_path, "html").read_text(encoding="utf-8")
    parsed = html_check(page)
    assert "</pre></details><script>" in parsed.visible


def test_markdown_and_text_are_inert(tmp_path: Path, evil: CrashFacts) -> None:
    r = ReportRenderer()
    md = r.write_dump_report(evil, tmp_path, "md").read_text(encoding="utf-8")
    txt = r.write_dump_report(evil, tmp_path, "txt").read_text(encoding="utf-8")
    for text in (md, txt):
        _no_raw_controls(text)
        assert "PWNED" not in text
    prose = "".join(md.split("```")[::2])  # outside fenced code blocks, where Markdown would render HTML
    assert "<script" not in prose
    assert "&lt;script&gt;" in prose
    assert md.count("```") % 2 == 0
    assert "f+0x1'''" in md


def test_json_keeps_the_text_exactly(tmp_path: Path, evil: CrashFacts) -> None:
    path = ReportRenderer().write_dump_report(evil, tmp_path, "json")
    raw = path.read_bytes()
    assert raw.isascii()
    assert CrashFacts.from_dict(json.loads(raw)) == evil


def test_csv_cells_are_not_formulas(tmp_path: Path, evil: CrashFacts) -> None:
    from dataclasses import replace

    from dbgauto.analysis.facts import CulpritFact

    formula = replace(evil, culprit=CulpritFact('=HYPERLINK("x")', 1, 0), process_name="+cmd|' /C calc'!A0")
    rows = list(csv.reader(io.StringIO(csv_text([formula]))))
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["Caused By Driver"].startswith("'=")
    assert cells["Process"].startswith("'+")
    path = write_csv([evil], tmp_path / "r.csv")
    path.read_bytes().decode("utf-8")


def test_names_from_dump_content_stay_in_the_output_folder(tmp_path: Path, evil: CrashFacts) -> None:
    out = tmp_path / "out"
    r = ReportRenderer()
    written = [r.write_dump_report(evil, out, fmt) for fmt in ("html", "md", "txt", "json")]
    written.append(r.write_index([evil], out))
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    assert all(p.parent == out for p in written)
    assert list(tmp_path.iterdir()) == [out]
    stem = report_stem(evil)
    assert "/" not in stem
    assert "\\" not in stem
    assert ".." not in stem
    assert stem.isascii()
    assert stem.isprintable()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\win.ini", "win.ini"),
        ("CON", "_CON"),
        ("lpt1.dmp", "_lpt1.dmp"),
        ("..", "dump"),
        ("", "dump"),
        ("a\x00b\udc80c", "a_b_c"),
        ("MEMORY.DMP", "MEMORY.DMP"),
        (".hidden", "hidden"),
        ("x" * 300, "x" * 80),
    ],
)
def test_safe_stem(text: str, expected: str) -> None:
    assert safe_stem(text) == expected


def test_inside_rejects_escapes(tmp_path: Path) -> None:
    assert inside(tmp_path, "a.html") == (tmp_path / "a.html").resolve()
    for bad in ("../a.html", "..", "sub/a.html", "/etc/passwd"):
        with pytest.raises(ValueError, match="escapes"):
            inside(tmp_path, bad)


def test_markdown_code_fence_cannot_be_closed_by_a_frame() -> None:
    from dbgauto.analysis.facts import FrameFact, StackFact

    facts = CrashFacts(stack=StackFact("symbolic", [FrameFact(0, 1, 2, None, None, "a\n```\n# pwn <b>")]))
    md = ReportRenderer().render_dump(facts, "md")
    block = md.split("```\n", 1)[1]
    assert block.count("```") == 1  # only the closing fence
    assert "\n# pwn" not in md


def test_driver_rows_of_long_and_hostile_names_are_escaped_and_not_kept() -> None:
    """Driver cells are made once per file values; a name or path too long to keep (a hostile dump) is still
    shown escaped, the same as any other."""
    from dbgauto.analysis.facts import DriverFact
    from dbgauto.report.rows import _file_cells, _name_cell, driver_rows

    long_name = "<b>" + "x" * 5000 + "\u202e.sys"
    short = DriverFact("a<b>.sys", "\\??\\C:\\a<b>.sys", 0x1000, 0x100, 0x5E0F4A3B, 7, True)
    hostile = DriverFact(long_name, long_name, 0x2000, 0x100, None, None, True)
    before = (_name_cell.cache_info().currsize, _file_cells.cache_info().currsize)
    html = str(driver_rows((short, hostile), None, True))
    assert "a&lt;b&gt;.sys" in html
    assert "<b>" not in html
    assert "&lt;b&gt;" + "x" * 5000 in html
    assert "\u202e" not in html  # made visible, not passed on
    after = (_name_cell.cache_info().currsize, _file_cells.cache_info().currsize)
    assert after[0] - before[0] <= 1  # only the short driver's cells were kept
    assert after[1] - before[1] <= 1
