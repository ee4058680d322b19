"""``dbgauto shell`` as a real subprocess over pipes (no terminal), the way programs drive it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dbgauto.cli.shell import parse_args


def _shell(args: list[str], stdin: str, *, test_mode: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DBGAUTO_SHELL_TEST"}
    if test_mode:
        env["DBGAUTO_SHELL_TEST"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "dbgauto", "shell", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_banner_prompt_commands_and_quit(triage_x64_path: Path) -> None:
    proc = _shell([str(triage_x64_path)], ".bugcheck; .echo two\nq\n.echo never\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    banner, _, rest = out.partition("0: kd> ")
    assert f"Loading Dump File [{triage_x64_path}]" in banner
    assert "Mini Kernel Dump File: Only registers and stack trace are available" in banner
    assert "Windows 10 Kernel Version 19041 MP (16 procs) Free x64" in banner
    assert "Kernel base = 0xfffff804`7ba00000 PsLoadedModuleList = 0xfffff804`7c62a390" in banner
    assert "Debug session time: Sun Feb 21 01:38:22.987 2021 (UTC + 0:00)" in banner
    assert "System Uptime: 0 days 0:00:03.747" in banner
    assert rest == (
        "Bugcheck code 1000007E\n"
        "Arguments ffffffff`c0000005 fffff804`8b58334c ffff8504`29891ee8 ffff8504`29891720\n"
        "two\n"
        "0: kd> quit:\n"
    )


def test_cdb_flags_and_initial_commands(triage_x64_path: Path) -> None:
    proc = _shell(["-z", str(triage_x64_path), "-y", "srv*c:\\sym", "-lines", "-c", ".echo first; .echo second"], "")
    assert proc.returncode == 0, proc.stderr
    assert "0: kd> .echo first\nfirst\n0: kd> .echo second\nsecond\n0: kd> " in proc.stdout


def test_end_of_input_exits_cleanly(triage_x64_path: Path) -> None:
    proc = _shell([str(triage_x64_path)], "vertarget\n")
    assert proc.returncode == 0
    assert proc.stdout.endswith("System Uptime: 0 days 0:00:03.747\n0: kd> ")


def test_hidden_test_commands_need_the_environment_variable(triage_x64_path: Path) -> None:
    off = _shell([str(triage_x64_path)], "!dbgauto_big 3\n")
    assert "line 1 of 3" not in off.stdout
    assert "not supported by the native engine" in off.stdout
    on = _shell([str(triage_x64_path)], "!dbgauto_big 3\n!dbgauto_crash\n", test_mode=True)
    assert "0: kd> line 1 of 3: dbgauto big output test\nline 2 of 3: dbgauto big output test\nline 3 of 3" in on.stdout
    assert on.returncode == 70


def test_bad_dump_fails_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dmp"
    bad.write_bytes(b"x" * 8192)
    proc = _shell([str(bad)], "")
    assert proc.returncode == 1
    assert proc.stderr.startswith("dbgauto: ")
    assert str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_parse_args_accepts_cdb_spelling() -> None:
    opts = parse_args(["/Z", "a.dmp", "-Y", "srv*", "-lines", "-n", "-c", "k; lm"])
    assert opts.dump == "a.dmp"
    assert opts.symbol_path == "srv*"
    assert opts.initial_commands == ["k", "lm"]
    assert opts.ignored == ["-lines", "-n"]
