"""Native commands users reach for: memory display over what the dump holds, .time, !thread, !process -1 0, help;
and the shell's help, usage and missing-file messages. Expected bytes are read from the file with struct at the
documented TRIAGE_DUMP64 offsets (header at 0x2000: CallStackOffset +0x28, TopOfStack +0x48), not by dbgauto."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from dbgauto.engines.native import NativeEngine
from dbgauto.errors import DebuggerCommandError


def _stack_truth(path: Path) -> tuple[int, list[int]]:
    raw = path.read_bytes()
    stack_off = struct.unpack_from("<I", raw, 0x2000 + 0x28)[0]
    top = struct.unpack_from("<Q", raw, 0x2000 + 0x48)[0]
    return top, list(struct.unpack_from("<4Q", raw, stack_off))


def _qwords(output: str) -> list[int]:
    values = []
    for line in output.splitlines():
        values += [int(w.replace("`", ""), 16) for w in line.split()[1:]]
    return values


def test_dq_dd_db_dps_read_what_the_dump_holds(triage_x64_path: Path) -> None:
    top, truth = _stack_truth(triage_x64_path)
    with NativeEngine().open(triage_x64_path) as s:
        out = s.run(f"dq {top:x} L4").output
        assert _qwords(out) == truth
        assert out.splitlines()[0].startswith(f"{top >> 32:08x}`{top & 0xFFFFFFFF:08x}")
        dd = s.run(f"dd {top:x} L2").output.split()
        assert [int(x, 16) for x in dd[1:3]] == [truth[0] & 0xFFFFFFFF, truth[0] >> 32]
        db = s.run(f"db {top:x} L8").output.split()
        assert int(db[1], 16) == truth[0] & 0xFF
        dps = s.run(f"dps {top:x} L4").output.splitlines()
        assert len(dps) == 4
        absent = s.run("dq 10 L2").output
        assert "????????`????????" in absent or "????????????????" in absent


def test_time_thread_process_help(triage_x64_path: Path, groundtruth_x64: dict) -> None:
    with NativeEngine().open(triage_x64_path) as s:
        t = s.run(".time").output
        assert t.startswith("Debug session time: Sun Feb 21 01:38:22.987 2021")
        assert "System Uptime:" in t
        thread = s.run("!thread").output
        assert thread.startswith("THREAD ")
        assert "Image:" in thread
        proc = s.run("!process -1 0").output
        assert proc.startswith("PROCESS ")
        for cmd in ("help", "?", ".help"):
            h = s.run(cmd).output
            assert "dps" in h
            assert "!thread" in h
            assert ".time" in h
        with pytest.raises(DebuggerCommandError):
            s.run("dq")
        with pytest.raises(DebuggerCommandError):
            s.run("dq fffff800`00000000 L100000000")


def _shell(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbgauto", "shell", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_shell_usage_missing_file_and_help(triage_x64_path: Path, tmp_path: Path) -> None:
    r = _shell("-h")
    assert r.returncode == 2
    assert "Usage: dbgauto shell DUMP" in r.stderr
    missing = tmp_path / "nope.dmp"
    r = _shell(str(missing))
    assert r.returncode == 1
    assert r.stderr.strip() == f"dbgauto shell: {missing}: no such file"
    r = _shell(str(triage_x64_path), stdin="help\n?\nq\n")
    assert r.returncode == 0
    assert r.stdout.count("Commands the native engine answers") == 2


def test_run_without_commands_runs_analyze(triage_x64_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "dbgauto", "run", str(triage_x64_path), "--engine", "native"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "kd> !analyze -v" in r.stdout
    assert "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED" in r.stdout
