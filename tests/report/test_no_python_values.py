"""Nothing a user reads shows Python internals or raw control codes.

Every report format and every text command runs over a set of inputs — the real small dump, the handmade small
dump, damaged dumps, a dump with hostile strings, every real debugger transcript, and facts with nothing known —
and the output must hold no ``None``, dict/list reprs, object reprs or tracebacks, and no raw ESC/CR/bidi
override reaching the reader.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from dbgauto_testkit.triage_handmade import build_handmade

from dbgauto.analysis.facts import CrashFacts, CulpritFact, DriverFact, SourceFact
from dbgauto.analysis.from_log import facts_from_log
from dbgauto.cli import cli
from dbgauto.debugtext import read_log
from dbgauto.engines.jobs import facts_from_dump
from dbgauto.report.render import ReportRenderer

TRANSCRIPTS = Path(__file__).resolve().parents[3] / "shared" / "transcripts"
FORBIDDEN = re.compile(r"\bNone\b(?! found)|\{'|\[\{|<object |Traceback")
RAW_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
HOSTILE = "evil\x1b]0;pwned\x07\u202eexe.sys\rX"


def _dumps(tmp: Path, triage_x64_path: Path) -> list[Path]:
    hm = build_handmade()
    out = [triage_x64_path]
    (tmp / "handmade.dmp").write_bytes(hm.data)
    out.append(tmp / "handmade.dmp")
    damaged = bytearray(hm.data)
    struct.pack_into("<I", damaged, hm.offsets["kdbg"] + 0x14, 0x12)  # KDBG Size inside its own header
    (tmp / "kdbg12.dmp").write_bytes(bytes(damaged))
    out.append(tmp / "kdbg12.dmp")
    nodrivers = bytearray(hm.data)
    struct.pack_into("<I", nodrivers, 0x2000 + 0x0C, 0)  # no context
    (tmp / "nocontext.dmp").write_bytes(bytes(nodrivers))
    out.append(tmp / "nocontext.dmp")
    return out


def _facts(tmp: Path, triage_x64_path: Path) -> list[CrashFacts]:
    facts = [facts_from_dump(p) for p in _dumps(tmp, triage_x64_path)]
    facts += [facts_from_log(read_log(p), source=p) for p in sorted(TRANSCRIPTS.glob("*.log"))]
    facts.append(CrashFacts())
    facts.append(
        CrashFacts(
            source=SourceFact(path=f"/x/{HOSTILE}.dmp"),
            process_name=HOSTILE,
            culprit=CulpritFact(name=HOSTILE),
            drivers=(DriverFact(name=HOSTILE, base=0xFFFFF80000000000, size=0x1000),),
            comment=HOSTILE,
            experimental={"code": {"a": 1, "b": [1, 2]}, "list": [{"k": "v"}]},
            warnings=(HOSTILE,),
        )
    )
    return facts


def _check(text: str, where: str) -> None:
    m = FORBIDDEN.search(text)
    assert m is None, f"{where}: {m.group()!r} in ...{text[max(0, m.start() - 80) : m.end() + 80]!r}"
    c = RAW_CONTROLS.search(text)
    assert c is None, f"{where}: raw control {c.group()!r} in ...{text[max(0, c.start() - 60) : c.end() + 60]!r}"


def test_every_report_format(tmp_path: Path, triage_x64_path: Path) -> None:
    facts = _facts(tmp_path, triage_x64_path)
    out = tmp_path / "out"
    written = ReportRenderer().write_report_set(facts, out, ("html", "md", "txt", "csv"))
    assert written
    for path in written:
        if path.suffix in (".html", ".md", ".txt", ".csv"):
            text = path.read_text(encoding="utf-8-sig")
            if path.suffix == ".html":  # scripts carry JSON data; check what a reader sees
                text = re.sub(r"<script\b.*?</script>", "", text, flags=re.S)
            _check(text, path.name)


def test_text_commands(tmp_path: Path, triage_x64_path: Path) -> None:
    runner = CliRunner()
    dumps = _dumps(tmp_path, triage_x64_path)
    hostile = tmp_path / f"{HOSTILE}.dmp"
    hostile.write_bytes(build_handmade().data)
    res = runner.invoke(cli, ["info", *map(str, dumps), str(hostile)])
    _check(res.stdout + res.stderr, "info")
    assert "\\x1b" in res.stdout  # the hostile file name is shown escaped
    for dump in (triage_x64_path, dumps[1]):
        res = runner.invoke(
            cli, ["run", str(dump), "--engine", "native", "-c", "vertarget; lm; k; r; !analyze -v; .bugcheck"]
        )
        _check(res.stdout + res.stderr, f"run {dump.name}")
    logs = sorted(TRANSCRIPTS.glob("*.log"))
    if logs:
        res = runner.invoke(
            cli, ["report", "-o", str(tmp_path / "r"), "-f", "txt", *[a for p in logs for a in ("--from-log", str(p))]]
        )
        _check(res.stdout + res.stderr, "report --from-log")


@pytest.mark.parametrize("stem", ["T03", "T12"])
def test_info_line_is_unknown_not_none(stem: str, tmp_path: Path) -> None:
    hm = build_handmade()
    path = tmp_path / "h.dmp"
    path.write_bytes(hm.data)
    res = CliRunner().invoke(cli, ["info", str(path)])
    line = next(x for x in res.stdout.splitlines() if x.startswith("Process / thread"))
    assert "None" not in line
