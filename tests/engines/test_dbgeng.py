"""The DbgEng engine's session logic, tested through its adapter seam on Linux.

DbgEng itself (pybag) runs only on Windows and is verified there by scripts/windows_smoke.py. Here the seam
is filled by a real object answering through the native engine, so the sequencing (open, version,
vertarget), timeouts and interrupts, the one-session-per-process rule and the error mapping are exercised.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from dbgauto.engines.dbgeng import DbgEngEngine
from dbgauto.engines.native import NativeEngine
from dbgauto.errors import (
    CommandTimeoutError,
    DebuggerCommandError,
    EngineCrashedError,
    EngineError,
    EngineUnavailableError,
)


class E_FAIL_Error(Exception):
    """What pybag raises when IDebugControl::Execute returns E_FAIL."""


class NativeBackedAdapter:
    """A DbgEngAdapter whose engine is dbgauto's native engine (plus a command that blocks until released)."""

    def __init__(self, *, interrupt_releases: bool = True) -> None:
        self.session: Any = None
        self.release = threading.Event()
        self.interrupt_releases = interrupt_releases
        self.interrupts = 0
        self.ended = False

    def open_dump(self, path: str, timeout: float) -> None:
        self.session = NativeEngine().open(path)

    def execute(self, command: str) -> str:
        if command == "!block":
            self.release.wait()
            return "released\n"
        if command == "!comfail":
            raise E_FAIL_Error("Execute returned 0x80004005")
        if command == "!explode":
            raise RuntimeError("access violation inside the engine")
        try:
            return str(self.session.run(command).output)
        except DebuggerCommandError:
            return f"       ^ Syntax error in '{command}'\n"

    def interrupt(self) -> None:
        self.interrupts += 1
        if self.interrupt_releases:
            self.release.set()

    def version(self) -> str | None:
        return "10.0.99999.1"

    def end(self) -> None:
        self.ended = True
        self.session.close()


def test_unavailable_off_windows_with_the_reason() -> None:
    avail = DbgEngEngine().available()
    if sys.platform == "win32":
        pytest.skip("on Windows availability depends on pybag and WinDbg")
    assert not avail.ok
    assert "not Windows" in avail.reason
    with pytest.raises(EngineUnavailableError, match="not Windows"):
        DbgEngEngine().open("whatever.dmp")


def test_session_opens_runs_and_writes_small_dumps(triage_x64_path: Path, tmp_path: Path) -> None:
    adapter = NativeBackedAdapter()
    with DbgEngEngine(lambda: adapter).open(triage_x64_path) as s:
        assert s.debugger_version == "10.0.99999.1"
        assert s.banner.build == 19041
        assert s.banner.kernel_base == 0xFFFFF8047BA00000
        assert s.banner.debugger_version == "10.0.99999.1"
        assert s.banner.raw.startswith("Microsoft (R) Windows Debugger Version 10.0.99999.1\n")
        res = s.run(".bugcheck")
        assert res.engine == "dbgeng"
        assert res.output.startswith("Bugcheck code 1000007E")
        out = s.write_small_dump(tmp_path / "small.dmp")
        assert out.read_bytes() == triage_x64_path.read_bytes()
    assert adapter.ended


def test_one_session_per_process(triage_x64_path: Path) -> None:
    engine = DbgEngEngine(NativeBackedAdapter)
    first = engine.open(triage_x64_path)
    with pytest.raises(EngineError, match="one DbgEng session per process"):
        engine.open(triage_x64_path)
    first.close()
    engine.open(triage_x64_path).close()


def test_timeout_interrupts_and_kills_the_session(triage_x64_path: Path) -> None:
    adapter = NativeBackedAdapter(interrupt_releases=True)
    s = DbgEngEngine(lambda: adapter).open(triage_x64_path)
    with pytest.raises(CommandTimeoutError) as info:
        s.run("!block", timeout=0.3)
    assert info.value.command == "!block"
    assert adapter.interrupts == 1
    assert s.closed
    with pytest.raises(EngineCrashedError, match="dead"):
        s.run(".bugcheck")
    s.close()
    DbgEngEngine(NativeBackedAdapter).open(triage_x64_path).close()  # the engine came back: a new session works


def test_a_command_that_ignores_the_interrupt_blocks_new_sessions_until_it_returns(triage_x64_path: Path) -> None:
    adapter = NativeBackedAdapter(interrupt_releases=False)
    s = DbgEngEngine(lambda: adapter).open(triage_x64_path)
    try:
        with pytest.raises(CommandTimeoutError):
            s.run("!block", timeout=0.2)
        s.close()
        assert not adapter.ended  # never end a session under a running command
        with pytest.raises(EngineError, match="still running"):
            DbgEngEngine(NativeBackedAdapter).open(triage_x64_path)
    finally:
        adapter.release.set()
    for thread in threading.enumerate():
        if thread.name == "dbgeng !block":
            thread.join(5)
    DbgEngEngine(NativeBackedAdapter).open(triage_x64_path).close()


def test_error_mapping(triage_x64_path: Path) -> None:
    with DbgEngEngine(NativeBackedAdapter).open(triage_x64_path) as s:
        with pytest.raises(DebuggerCommandError, match="Syntax error"):
            s.run("dt nt!_KTHREAD")
        with pytest.raises(DebuggerCommandError, match="0x80004005"):
            s.run("!comfail")
        assert s.run(".echo alive").output == "alive\n"
        with pytest.raises(EngineCrashedError, match="access violation"):
            s.run("!explode")
        assert s.closed


def test_open_failure_releases_the_process_slot(tmp_path: Path, triage_x64_path: Path) -> None:
    bad = tmp_path / "bad.dmp"
    bad.write_bytes(b"garbage" * 64)
    with pytest.raises(EngineError):
        DbgEngEngine(NativeBackedAdapter).open(bad)
    DbgEngEngine(NativeBackedAdapter).open(triage_x64_path).close()
