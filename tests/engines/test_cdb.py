"""The cdb engine driving a real debugger-like subprocess: ``python -m dbgauto shell`` with cdb's flags.

These tests run the Windows code path (PopenSpawn over pipes, .echo sentinels, break + kill of the process
tree) against the native console, which prints what cdb prints for the same commands.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dbgauto import __version__
from dbgauto.engines.cdb import CdbEngine
from dbgauto.engines.native import NativeEngine
from dbgauto.errors import (
    CommandTimeoutError,
    DebuggerCommandError,
    DumpNotFoundError,
    EngineCrashedError,
    EngineError,
    EngineUnavailableError,
    OutputExistsError,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process checks below use /proc and signals")

SHELL = f"{shlex.quote(sys.executable)} -m dbgauto shell"
NATIVE_COMMANDS = [
    "vertarget",
    ".bugcheck",
    "lm",
    "lm k",
    "lmv",
    "lmvm hal",
    "r",
    "r rax,rip",
    "k",
    "!analyze -v",
    "!analyze",
    ".echo plain text",
]


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (read from /proc, no psutil)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


@pytest.fixture
def shell_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBGAUTO_SHELL_TEST", "1")


@pytest.fixture
def engine(shell_env: None) -> CdbEngine:
    return CdbEngine(SHELL)


@pytest.fixture
def session(engine: CdbEngine, triage_x64_path: Path) -> Any:
    with engine.open(triage_x64_path, symbol_path="srv*C:\\symbols", timeout=60) as s:
        yield s


def test_available_names_the_command_line(engine: CdbEngine) -> None:
    avail = engine.available()
    assert avail.ok
    assert "--debugger-path" in avail.reason
    assert avail.location is not None


def test_banner_is_parsed(session: Any) -> None:
    b = session.banner
    assert b.dump_kind == "Mini Kernel Dump File: Only registers and stack trace are available"
    assert b.build == 19041
    assert b.kernel_base == 0xFFFFF8047BA00000
    assert b.ps_loaded_module_list == 0xFFFFF8047C62A390
    assert b.session_time == "Sun Feb 21 01:38:22.987 2021 (UTC + 0:00)"
    assert b.uptime == "0 days 0:00:03.747"
    assert session.debugger_version == b.debugger_version
    assert b.debugger_version == __version__  # "dbgauto Native Debugger Version X" printed by the stand-in
    assert session.prompt == "0: kd> "


def test_every_native_command_round_trips(session: Any, triage_x64_path: Path) -> None:
    with NativeEngine().open(triage_x64_path) as native:
        for command in NATIVE_COMMANDS:
            via_cdb = session.run(command)
            assert via_cdb.output == native.run(command).output, command
            assert via_cdb.engine == "cdb"
            assert via_cdb.elapsed >= 0


def test_semicolon_line_runs_every_command(session: Any) -> None:
    assert session.run('.echo one; .echo "two; 2"; .echo three').output == "one\ntwo; 2\nthree\n"


def test_rejected_command_raises_and_session_lives(session: Any) -> None:
    with pytest.raises(DebuggerCommandError, match="Syntax error") as info:
        session.run("dt nt!_KPRCB")
    assert "not supported by the native engine" in info.value.output
    with pytest.raises(DebuggerCommandError, match="No export process found"):
        session.run("!process 0 0")
    assert session.run(".echo still here").output == "still here\n"


def test_prompt_and_sentinel_lookalikes_do_not_end_the_output(session: Any) -> None:
    tricky = r"0: kd> \n0: kd> DBGAUTO_SYNC_0123456789abcdef01234567\n.echo DBGAUTO_SYNC_x\nkd> tail"
    out = session.run(f"!dbgauto_echo {tricky}").output
    assert out == "0: kd> \n0: kd> DBGAUTO_SYNC_0123456789abcdef01234567\n.echo DBGAUTO_SYNC_x\nkd> tail\n"
    assert session.run(".echo next").output == "next\n"


def test_large_output(session: Any) -> None:
    out = session.run("!dbgauto_big 20000", timeout=60).output
    lines = out.splitlines()
    assert len(lines) == 20000
    assert lines[0] == "line 00001 of 20000: dbgauto big output test"
    assert lines[-1] == "line 20000 of 20000: dbgauto big output test"


def test_timeout_kills_the_debugger_and_a_new_session_works(engine: CdbEngine, triage_x64_path: Path) -> None:
    s = engine.open(triage_x64_path, timeout=60)
    pid = s.pid
    assert _alive(pid)
    start = time.monotonic()
    with pytest.raises(CommandTimeoutError) as info:
        s.run("!dbgauto_hang", timeout=1.0)
    assert time.monotonic() - start < 15
    assert info.value.timeout == 1.0
    assert info.value.command == "!dbgauto_hang"
    assert not _alive(pid)
    assert s.closed
    with pytest.raises(EngineCrashedError, match="dead"):
        s.run("vertarget")
    s.close()
    with engine.open(triage_x64_path, timeout=60) as again:
        assert again.run(".bugcheck").output.startswith("Bugcheck code 1000007E")


def test_crash_is_detected_with_last_output(engine: CdbEngine, triage_x64_path: Path) -> None:
    s = engine.open(triage_x64_path, timeout=60)
    pid = s.pid
    with pytest.raises(EngineCrashedError, match="status 70") as info:
        s.run("!dbgauto_crash")
    assert "crashing on purpose" in info.value.last_output
    assert not _alive(pid)
    with pytest.raises(EngineCrashedError):
        s.run("vertarget")
    s.close()


def test_500_commands_in_one_session_leak_nothing(engine: CdbEngine, triage_x64_path: Path) -> None:
    fds_before = _open_fds()
    s = engine.open(triage_x64_path, timeout=60)
    pid = s.pid
    for i in range(500):
        assert s.run(f".echo n{i}").output == f"n{i}\n"
    assert s.run(".bugcheck").output.startswith("Bugcheck code")
    s.close()
    assert not _alive(pid)
    assert _open_fds() == fds_before
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    if children.exists():
        assert str(pid) not in children.read_text().split()


def test_q_ends_the_debugger(engine: CdbEngine, triage_x64_path: Path) -> None:
    s = engine.open(triage_x64_path, timeout=60)
    assert s.run("q").output == "quit:\n"
    assert s.closed
    assert not _alive(s.pid)


def test_write_small_dump_through_dot_dump(session: Any, tmp_path: Path, triage_x64_path: Path) -> None:
    out = tmp_path / "sub" / "small.dmp"
    assert session.write_small_dump(out) == out.resolve()
    assert out.read_bytes() == triage_x64_path.read_bytes()
    with pytest.raises(OutputExistsError):
        session.write_small_dump(out)
    session.write_small_dump(out, overwrite=True)
    assert sorted(p.name for p in out.parent.iterdir()) == ["small.dmp"]  # no .partial left behind


def test_missing_dump_and_missing_debugger(engine: CdbEngine, tmp_path: Path, triage_x64_path: Path) -> None:
    with pytest.raises(DumpNotFoundError):
        engine.open(tmp_path / "absent.dmp")
    nowhere = CdbEngine(str(tmp_path / "no-such-cdb.exe"))
    assert not nowhere.available().ok
    with pytest.raises(EngineUnavailableError):
        nowhere.open(triage_x64_path)


def test_debugger_that_cannot_open_the_dump(engine: CdbEngine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.dmp"
    bad.write_bytes(b"not a dump at all" * 100)
    with pytest.raises(EngineError, match=r"while opening .*bad\.dmp: dbgauto: .*bad\.dmp"):
        engine.open(bad, timeout=60)  # the console exits with its one-line error: named in the message
