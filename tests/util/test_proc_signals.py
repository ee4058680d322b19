"""Hazard groups 5 and 6: debugger process trees, the console code page, stop requests on every OS.

Real processes on this OS (a child that starts a grandchild, killed as a tree); the Windows side of each
choice through its seam (taskkill runner, code-page source, signal module and console-handler stand-ins).
Job Objects and SetConsoleCtrlHandler themselves run only in the Windows CI job.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dbgauto.util import proc as procs
from dbgauto.util.signals import CONSOLE_EVENTS, on_stop, stop_signals

TREE = (
    "import subprocess, sys, time\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(g.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def test_spawn_kwargs_both_sides() -> None:
    assert procs.spawn_kwargs(windows=True) == {"creationflags": 0x200}  # CREATE_NEW_PROCESS_GROUP, winbase.h
    assert procs.spawn_kwargs(windows=False) == {"start_new_session": True}
    if sys.platform == "win32":
        assert subprocess.CREATE_NEW_PROCESS_GROUP == procs.CREATE_NEW_PROCESS_GROUP


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are the POSIX side")
def test_a_debugger_tree_is_killed_whole() -> None:
    child = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True, **procs.spawn_kwargs())
    try:
        assert child.stdout is not None
        grandchild = int(child.stdout.readline())
        assert os.getpgid(child.pid) == child.pid  # its own group (setsid by subprocess, no preexec_fn)
        how = procs.kill_tree(child)
        child.wait(timeout=10)
        deadline = time.monotonic() + 10
        while procs.pid_alive(grandchild) and time.monotonic() < deadline:
            _reap(grandchild)
            time.sleep(0.05)
        if hasattr(os, "killpg"):
            assert how == "killpg"
            assert not procs.pid_alive(grandchild)  # the whole group went
        else:  # POSIX-removed job: no groups, the child alone is killed (Windows uses its Job Object instead)
            assert how == "kill"
            os.kill(grandchild, 9)
    finally:
        child.kill() if child.poll() is None else None


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_windows_tree_kill_prefers_the_job_then_taskkill() -> None:
    class FakeJob:
        handle = 1234
        terminated = False

        def terminate(self) -> None:
            self.terminated = True

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        job = FakeJob()
        assert procs.kill_tree(child, job=job, windows=True) == "job"  # type: ignore[arg-type]
        assert job.terminated
        assert child.poll() is None  # the job did it, nothing else was touched
        ran: list[list[str]] = []
        assert procs.kill_tree(child, job=None, windows=True, run=lambda argv, **kw: ran.append(argv)) == "taskkill"
        assert ran == [["taskkill", "/F", "/T", "/PID", str(child.pid)]]
        assert child.wait(timeout=10) != 0  # then Popen.kill (TerminateProcess on Windows)
    finally:
        if child.poll() is None:
            child.kill()


def test_pid_alive_without_signalling() -> None:
    assert procs.pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not procs.pid_alive(child.pid)
    assert procs.new_job(windows=False) is None


@pytest.mark.parametrize(
    ("pages", "encoding"),
    [
        ((437, 437), "cp437"),  # a US console
        ((0, 850), "cp850"),  # no console (Task Scheduler, a service): the OEM code page
        ((65001, 437), "utf-8"),  # chcp 65001
        ((1252, 437), "cp1252"),
        ((0, 0), "utf-8"),
        ((99999, 866), "cp866"),  # an unknown console page falls back to the OEM one
    ],
)
def test_console_encoding_windows_side(pages: tuple[int, int], encoding: str) -> None:
    assert procs.console_encoding(windows=True, code_pages=lambda: pages) == encoding


def test_console_encoding_is_not_the_utf8_mode_answer() -> None:
    # Python's UTF-8 mode makes getpreferredencoding() say UTF-8 whatever the console writes; cdb on a cp437
    # console still writes cp437: "Ä" arrives as 0x8E and must decode as "Ä"
    enc = procs.console_encoding(windows=True, code_pages=lambda: (437, 437))
    assert b"\x8e".decode(enc) == "\u00c4"
    assert procs.console_encoding(windows=False) == "utf-8"


def _fake_signal_module(with_break: bool) -> Any:
    installed: dict[int, Any] = {}

    def signal_(num: int, handler: Any) -> Any:
        old = installed.get(num, "default")
        installed[num] = handler
        return old

    ns = SimpleNamespace(SIGINT=2, SIGTERM=15, signal=signal_, installed=installed)
    if with_break:
        ns.SIGBREAK = 21  # Windows: CTRL_BREAK_EVENT arrives as SIGBREAK
    return ns


def test_stop_requests_windows_side() -> None:
    sig = _fake_signal_module(with_break=True)
    assert stop_signals(sig) == [2, 15, 21]
    registered: list[Any] = []
    removed: list[bool] = []

    def console(callback: Any) -> Any:
        registered.append(callback)
        return lambda: removed.append(True)

    reasons: list[str] = []
    restore = on_stop(reasons.append, sig=sig, windows=True, console=console, grace=0)
    sig.installed[21](21, None)  # Ctrl+Break (Task Scheduler's End, a service wrapper)
    sig.installed[2](2, None)  # Ctrl+C
    (callback,) = registered
    assert callback(0) is False  # CTRL_C_EVENT: left to the SIGINT handler
    assert callback(2) is True  # CTRL_CLOSE_EVENT
    assert callback(6) is True  # CTRL_SHUTDOWN_EVENT
    assert reasons == ["SIGBREAK", "SIGINT", CONSOLE_EVENTS[2], CONSOLE_EVENTS[6]]
    restore()
    assert sig.installed == {2: "default", 15: "default", 21: "default"}
    assert removed == [True]


def test_stop_requests_posix_side_installs_no_console_handler() -> None:
    sig = _fake_signal_module(with_break=False)
    called: list[Any] = []
    restore = on_stop(lambda r: None, sig=sig, windows=False, console=called.append)
    assert sorted(sig.installed) == [2, 15]
    assert called == []
    restore()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is the POSIX side")
def test_sigterm_interrupts_a_batch_and_records_it(tmp_path: Path) -> None:
    from dbgauto.catalog.db import CATALOG_NAME, Catalog

    # a.dmp fails at once (a recorded result: the run is under way), then x.dmp hangs; SIGTERM must stop the
    # batch like Ctrl+C: workers stopped, the run recorded as interrupted
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.dmp", "x.dmp"):
        (src / name).write_bytes(b"PAGEDU64" + b"\0" * 4096)
    env = {**os.environ, "DBGAUTO_FAULT_INJECT": "hang:x.dmp"}
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "dbgauto", "batch", str(src), "--out", str(out), "--no-convert", "--no-report"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not _results(out / CATALOG_NAME):
        time.sleep(0.01)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, stderr  # what Ctrl+C gives: interrupted, rerun to resume
    assert "interrupted — rerun the same command to resume" in stderr
    assert "stop requested (SIGTERM)" in stderr
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        assert [r["status"] for r in cat.runs()] == ["interrupted"]


def _results(db: Path) -> int:
    import sqlite3

    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT count(*) FROM results").fetchone()[0])
    except sqlite3.Error:
        return 0
