"""A real small dump whose driver names, comment and strings are hostile, written with the triage writer.

The dump starts from the real Windows-written sample (every section kept) and replaces driver names, the
unloaded-driver names and the header comment; one name is patched to hold a lone UTF-16 surrogate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from dbgauto.engines.jobs import facts_from_dump
from dbgauto.kdump.reader import KernelDump
from dbgauto.kdump.triage_writer import TriageDumpBuilder
from dbgauto.report.render import ReportRenderer

EVIL = "<script>alert(1)</script>{{'PW'~'NED'}}../..\\x\x01\x1bQ.sys"
MARK = "SURROGATEQ.sys"


@pytest.fixture(scope="module")
def hostile_dump(triage_x64_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with KernelDump.open(triage_x64_path) as dump:
        builder = TriageDumpBuilder.from_triage(dump.triage)
        drivers = list(dump.triage.drivers)
        unloaded = list(dump.triage.unloaded_drivers)
    amdppm = next(i for i, d in enumerate(drivers) if d.name and d.name.endswith("amdppm.sys"))
    drivers[amdppm] = replace(drivers[amdppm], name=f"\\SystemRoot\\{EVIL}")
    drivers[1] = replace(drivers[1], name=f"\\SystemRoot\\{MARK}")
    builder.drivers = drivers
    builder.unloaded_drivers = [replace(unloaded[0], name="<img src=x>", name_length=22), *unloaded[1:]]
    builder.header_fields = {**builder.header_fields, "comment": b"<script>x</script>{{1+1}}\x07"}
    data = bytearray(builder.build())
    needle = MARK.encode("utf-16-le")
    at = data.index(needle)
    data[at + 2 * MARK.index("Q") : at + 2 * MARK.index("Q") + 2] = b"\x00\xdc"  # lone low surrogate U+DC00
    path = tmp_path_factory.mktemp("hostile") / "..%2f<evil>.dmp"
    path.write_bytes(bytes(data))
    return path


def test_hostile_dump_reads_and_keeps_the_culprit(hostile_dump: Path) -> None:
    facts = facts_from_dump(hostile_dump)
    assert facts.culprit is not None
    assert facts.culprit.name == EVIL.rsplit("\\", 1)[-1]
    assert facts.culprit.rule == "exception-address"
    assert any(MARK[:9] in d.name for d in facts.drivers)


def test_hostile_dump_report_is_inert(hostile_dump: Path, tmp_path: Path, html_check: Callable) -> None:
    facts = facts_from_dump(hostile_dump)
    out = tmp_path / "out"
    r = ReportRenderer()
    paths = [r.write_dump_report(facts, out, fmt) for fmt in ("html", "md", "txt", "json")]
    paths.append(r.write_index([facts], out))
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    for p in paths:
        text = p.read_bytes().decode("utf-8")
        assert not {chr(c) for c in range(0x20) if chr(c) not in "\n\t\r"} & set(text)
    report = html_check(paths[0].read_text(encoding="utf-8"))
    assert report.scripts == []
    assert not any(attr.startswith("on") for _, attr, _ in report.attrs)
    assert "<script>alert(1)</script>" in report.visible
    assert "{{'PW'~'NED'}}" in report.visible
    assert "PWNED" not in report.visible
    assert "<img src=x>" in report.visible
    assert facts.comment == "<script>x</script>{{1+1}}\x07"
    assert "<script>x</script>{{1+1}}\\x07" in report.visible  # the BEL shown as \x07, the markup as text
    index = html_check(paths[-1].read_text(encoding="utf-8"))
    assert len(index.scripts) == 1
