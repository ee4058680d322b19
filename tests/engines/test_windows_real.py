"""What only a Windows machine can prove: Job Objects, the console code page, console handlers, real cdb.exe
and DbgEng on generated dumps. Skipped elsewhere; the Windows CI job (.github/workflows/windows.yml) runs
them with ``DBGAUTO_REQUIRE_WINDOWS_ENGINES=1``, which turns a missing cdb or pybag into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbgauto.debugtext.bugcheck import parse_bugcheck
from dbgauto.kdump.reader import KernelDump
from dbgauto.util import proc as procs

WINDOWS = sys.platform == "win32"
REQUIRED = os.environ.get("DBGAUTO_REQUIRE_WINDOWS_ENGINES") == "1"
SYNTH = Path(__file__).resolve().parents[2] / "scripts" / "make_synth_dumps.py"
windows_only = pytest.mark.skipif(not WINDOWS, reason="Win32 calls: run by the Windows CI job")


@windows_only
def test_job_object_kills_what_the_debugger_started() -> None:
    tree = (
        "import subprocess, sys, time\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(g.pid, flush=True); time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", tree], stdout=subprocess.PIPE, text=True, **procs.spawn_kwargs())
    job = procs.new_job()
    assert job is not None
    job.assign(child.pid)
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    assert procs.pid_alive(grandchild)
    job.close()  # kill-on-close
    child.wait(timeout=30)
    deadline = time.monotonic() + 30
    while procs.pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not procs.pid_alive(grandchild)


@windows_only
def test_console_encoding_is_a_real_code_page() -> None:
    import codecs
    import ctypes

    k32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined]
    console_cp, oem_cp = k32.GetConsoleOutputCP(), k32.GetOEMCP()
    expected = console_cp or oem_cp
    got = procs.console_encoding()
    assert got == ("utf-8" if expected == 65001 else codecs.lookup(f"cp{expected}").name)


@windows_only
def test_console_handler_registers_and_unregisters() -> None:
    from dbgauto.util.signals import on_stop

    restore = on_stop(lambda reason: None, windows=True)
    restore()


def _generated_dump(tmp_path: Path) -> tuple[Path, int]:
    subprocess.run([sys.executable, str(SYNTH), str(tmp_path), "--ram-mib", "16"], check=True, capture_output=True)
    dump = sorted(tmp_path.glob("*.dmp"))[0]
    with KernelDump.open(dump) as kd:
        return dump, kd.header.bugcheck_code


def _engine_or_skip(name: str) -> object:
    from dbgauto.engines.select import get_engine

    engine = get_engine(name)
    avail = engine.available()
    if not avail.ok:
        if REQUIRED:
            pytest.fail(f"{name} must run in this job: {avail.reason}")
        pytest.skip(f"{name}: {avail.reason}")
    return engine


@pytest.mark.cdb
@windows_only
def test_real_cdb_reads_a_generated_dump(tmp_path: Path) -> None:
    engine = _engine_or_skip("cdb")
    dump, code = _generated_dump(tmp_path)
    with engine.open(dump, timeout=300) as session:  # type: ignore[attr-defined]
        out = session.run(".bugcheck", timeout=300).output
    info = parse_bugcheck(out)
    assert info is not None, out
    assert info.code == code


@pytest.mark.dbgeng
@windows_only
def test_real_dbgeng_reads_a_generated_dump(tmp_path: Path) -> None:
    engine = _engine_or_skip("dbgeng")
    dump, code = _generated_dump(tmp_path)
    with engine.open(dump, timeout=300) as session:  # type: ignore[attr-defined]
        out = session.run(".bugcheck", timeout=300).output
    info = parse_bugcheck(out)
    assert info is not None, out
    assert info.code == code
