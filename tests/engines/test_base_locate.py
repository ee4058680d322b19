"""Command splitting, the banner reader on real debugger transcripts, and finding cdb/kd."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from dbgauto.engines.base import parse_banner, split_commands
from dbgauto.engines.locate import candidates, find_debugger, split_command_line


def _block(transcripts_dir: Path, stem: str) -> str:
    text = next(transcripts_dir.glob(f"{stem}_*.log")).read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.startswith("# "))


def test_split_commands_like_the_debugger() -> None:
    assert split_commands(".process /r /p 0xffff9c0d7d8d9140; .thread /r /p 0xffff9c0d84ab2040 ; kb") == [
        ".process /r /p 0xffff9c0d7d8d9140",
        ".thread /r /p 0xffff9c0d84ab2040",
        "kb",
    ]
    assert split_commands(".frame 0n0;dv /t /v") == [".frame 0n0", "dv /t /v"]  # D01: no spaces around ;
    assert split_commands('.echo "a;b"; k') == ['.echo "a;b"', "k"]
    assert split_commands(" ; ;") == []
    assert split_commands(".if (1) { r; k }; g") == [".if (1) { r; k }", "g"]  # a brace block is one command


def test_banner_of_a_new_debugger_t11(transcripts_dir: Path) -> None:
    b = parse_banner(_block(transcripts_dir, "T11"))
    assert b.debugger_version == "10.0.29617.1000"
    assert b.dump_kind == "Mini Kernel Dump File: Only registers and stack trace are available"
    assert b.os_line == "Windows 10 Kernel Version 19041 MP (8 procs) Free x64"
    assert b.build == 19041
    assert b.kernel_base == 0xFFFFF80505200000
    assert b.ps_loaded_module_list == 0xFFFFF80505E2A420
    assert b.session_time == "Thu Oct  1 14:13:42.872 2026 (UTC - 5:00)"
    assert b.uptime == "0 days 0:02:09.764"


def test_banner_of_an_old_debugger_on_a_new_dump_t12(transcripts_dir: Path) -> None:
    b = parse_banner(_block(transcripts_dir, "T12"))
    assert b.debugger_version == "6.12.0002.633"
    assert b.os_line == "Windows 7 Kernel Version 22621 MP (32 procs) Free x64"
    assert b.build == 22621
    assert b.kernel_base == 0xFFFFF8066F000000


def test_banner_of_a_32_bit_dump_t03(transcripts_dir: Path) -> None:
    b = parse_banner(_block(transcripts_dir, "T03"))
    assert b.kernel_base == 0x804D7000  # no backtick on 32-bit targets
    assert b.ps_loaded_module_list == 0x8055C700
    assert b.build == 2600


def test_banner_without_lines_is_empty() -> None:
    b = parse_banner("0: kd> \n")
    assert b.debugger_version is None
    assert b.build is None
    assert b.kernel_base is None


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_split_command_line_keeps_an_existing_path_with_spaces(tmp_path: Path) -> None:
    prog = _executable(tmp_path / "Debuggers x64" / "cdb.exe")
    assert split_command_line(str(prog)) == (str(prog),)
    assert split_command_line("python -m dbgauto shell") == ("python", "-m", "dbgauto", "shell")


def test_search_order_env_then_path_then_kits(tmp_path: Path) -> None:
    kits_cdb = _executable(tmp_path / "PF86" / "Windows Kits" / "10" / "Debuggers" / "x64" / "cdb.exe")
    env = {"ProgramFiles(x86)": str(tmp_path / "PF86"), "PATH": str(tmp_path / "empty")}
    found = find_debugger(None, env=env)
    assert found is not None
    assert found.argv == (str(kits_cdb),)
    assert found.source == "Windows Kits 10 (x64)"
    on_path = _executable(tmp_path / "bin" / "cdb")
    found = find_debugger(None, env={**env, "PATH": str(on_path.parent)})
    assert found is not None
    assert found.argv == (str(on_path),)
    env_cdb = _executable(tmp_path / "custom" / "cdb.exe")
    found = find_debugger(None, env={**env, "DBGAUTO_CDB": str(env_cdb)})
    assert found is not None
    assert found.source == "DBGAUTO_CDB"
    sources = [c.source for c in candidates(str(env_cdb), env={**env, "DBGAUTO_CDB": str(env_cdb)})]
    assert sources[:3] == ["--debugger-path", "DBGAUTO_CDB", "PATH"]


def test_an_explicit_path_that_does_not_exist_is_not_replaced(tmp_path: Path) -> None:
    env_cdb = _executable(tmp_path / "cdb.exe")
    assert find_debugger(str(tmp_path / "missing.exe"), env={"DBGAUTO_CDB": str(env_cdb)}) is None


@pytest.mark.skipif(sys.platform == "win32", reason="Store layout is checked on Windows by windows_smoke.py")
def test_store_windbg_folder(tmp_path: Path) -> None:
    cdb = _executable(
        tmp_path / "WindowsApps" / "Microsoft.WinDbg_1.2410.11001.0_x64__8wekyb3d8bbwe" / "amd64" / "cdb.exe"
    )
    found = find_debugger(None, env={"ProgramFiles": str(tmp_path), "PATH": ""})
    assert found is not None
    assert found.argv == (str(cdb),)
    assert found.source.startswith("WinDbg (Store)")
