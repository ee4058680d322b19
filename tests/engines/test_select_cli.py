"""Engine selection, ``dbgauto doctor`` and ``dbgauto run`` on this (non-Windows) machine."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dbgauto import __version__
from dbgauto import debugtext as parsers
from dbgauto.cli import cli
from dbgauto.engines.select import get_engine, select_engine
from dbgauto.errors import EngineUnavailableError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="asserts what a machine without Windows reports")

SHELL = f"{shlex.quote(sys.executable)} -m dbgauto shell"


@pytest.fixture(autouse=True)
def _no_debugger_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBGAUTO_CDB", raising=False)
    monkeypatch.delenv("DBGAUTO_DEBUGGER_PATH", raising=False)


def test_auto_picks_native_and_says_why_windows_engines_are_out() -> None:
    engine, why = select_engine("auto")
    assert engine.name == "native"
    assert "dbgeng unusable: not Windows" in why
    assert "cdb unusable: cdb.exe not found" in why


def test_auto_with_a_debugger_path_picks_cdb() -> None:
    engine, why = select_engine("auto", debugger_path=SHELL)
    assert engine.name == "cdb"
    assert "--debugger-path" in why


def test_named_engines() -> None:
    with pytest.raises(EngineUnavailableError, match="not Windows"):
        select_engine("dbgeng")
    with pytest.raises(EngineUnavailableError, match=r"cdb\.exe not found"):
        select_engine("cdb")
    with pytest.raises(EngineUnavailableError, match="unknown engine"):
        get_engine("windbg")
    assert get_engine("kd").name == "kd"


def test_doctor_says_plainly_that_windows_engines_are_unavailable() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--no-probe"])
    assert result.exit_code == 0, result.output
    assert "Windows engines (cdb/kd, DbgEng) are unavailable: this is not Windows" in result.output
    assert "dbgeng  unusable not Windows" in result.output
    assert "--engine auto picks: native" in result.output
    assert "[absent] PATH: cdb.exe" in result.output


def test_doctor_json_with_a_debugger_path_probes_its_version() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--json", "--debugger-path", SHELL])
    assert result.exit_code == 0, result.output
    rep = json.loads(result.output)
    cdb = next(e for e in rep["engines"] if e["name"] == "cdb")
    assert cdb["usable"] is True
    assert cdb["version"] == __version__  # what `dbgauto shell -version` answers, like `cdb -version`
    assert rep["auto"]["engine"] == "cdb"
    assert rep["looked_for"]["cdb"][0] == {"source": "--debugger-path", "path": SHELL, "exists": True}


def test_run_native_prints_a_console_log(triage_x64_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(triage_x64_path), "-c", ".bugcheck; .echo done"])
    assert result.exit_code == 0, result.output
    assert "Loading Dump File [" in result.output
    assert "0: kd> .bugcheck\nBugcheck code 1000007E\n" in result.output
    assert result.output.endswith("0: kd> .echo done\ndone\n")


def test_run_json_through_cdb_and_a_failing_command(triage_x64_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    args = ["run", str(triage_x64_path), "-c", "vertarget; nosuchcommand", "--engine", "cdb"]
    result = CliRunner().invoke(cli, [*args, "--debugger-path", SHELL, "--json", "-o", str(out)])
    assert result.exit_code == 1  # a command failed
    doc = json.loads(out.read_text())
    assert doc["engine"] == "cdb"
    assert doc["banner"]["build"] == 19041
    assert doc["results"][0]["output"].startswith("Windows 10 Kernel Version 19041 MP (16 procs) Free x64")
    assert doc["results"][1]["error"]["code"] == "debugger_command"


def test_run_log_parses_back(triage_x64_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(triage_x64_path), "-c", "vertarget; .bugcheck; lm; k; !analyze -v"])
    assert result.exit_code == 0, result.output
    log = parsers.parse_log(result.output)
    assert log.banner is not None
    assert log.banner.build == 19041
    assert log.bugcheck is not None
    assert log.bugcheck.code == 0x1000007E
    assert len(log.modules) > 100
