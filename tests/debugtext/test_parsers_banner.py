"""parse_banner / parse_vertarget on the real transcripts; every expected value was read from the .log file."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dbgauto.debugtext import (
    parse_banner,
    parse_os_line,
    parse_session_time,
    parse_uptime,
    parse_vertarget,
    split_commands,
)

_META_RE = re.compile(r"^# (?:source|kind|extracted|note):|^# ---$")


def transcript(transcripts_dir: Path, stem: str) -> str:
    path = next(transcripts_dir.glob(f"{stem}_*.log"))
    return "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not _META_RE.match(line))


def head(transcripts_dir: Path, stem: str) -> str:
    """The text before the first prompt (what the debugger printed on opening the dump)."""
    first = split_commands(transcript(transcripts_dir, stem))[0]
    assert first.prompt is None
    return first.output


def output_of(transcripts_dir: Path, stem: str, command: str) -> str:
    return next(b.output for b in split_commands(transcript(transcripts_dir, stem)) if b.command == command)


def test_t01_windbg_preview_banner_without_version_line(transcripts_dir: Path) -> None:
    b = parse_banner(head(transcripts_dir, "T01"))
    assert b.debugger_version is None
    assert b.debugger_arch is None
    assert b.dump_file == r"C:\Windows\MEMORY.DMP"
    assert b.dump_kind == "Kernel Bitmap Dump File"
    assert b.dump_kind_line == (
        "Kernel Bitmap Dump File: Kernel address space is available, User address space may not be available."
    )
    assert b.dump_variety == "kernel"
    assert b.symbol_path == "srv*"
    assert b.executable_path == ""
    assert b.os is not None
    assert b.os.raw == "Windows 10 Kernel Version 19041 MP (3 procs) Free x64"
    assert (b.os_name, b.build, b.processors, b.arch) == ("Windows 10", 19041, 3, "x64")
    assert b.os.multiprocessor is True
    assert b.os.free is True
    assert b.os.name_reliable
    assert (b.product, b.suite) == ("WinNt", ("TerminalServer", "SingleUserTS"))
    assert b.edition_build_lab == "19041.1.amd64fre.vb_release.191206-1406"
    assert b.built_by is None
    assert b.build_lab == "19041.1.amd64fre.vb_release.191206-1406"
    assert b.machine_name == ""  # "Machine Name:" printed with nothing after it
    assert b.kernel_base == 0xFFFFF80062600000
    assert b.ps_loaded_module_list == 0xFFFFF8006322A230
    assert b.debug_session_time_raw == "Thu Oct  7 20:33:12.945 2021 (UTC + 9:00)"
    assert b.debug_session_time == datetime(2021, 10, 7, 11, 33, 12, 945000, tzinfo=UTC)
    assert b.uptime_raw == "0 days 0:00:54.755"
    assert b.uptime_seconds == pytest.approx(54.755)
    assert b.bugcheck is None
    assert b.probably_caused_by is None
    assert b.warnings == ()


def test_t03_xp_x86_mini_dump_damaged_banner(transcripts_dir: Path) -> None:
    b = parse_banner(head(transcripts_dir, "T03"))
    assert (b.debugger_version, b.debugger_arch) == ("6.8.0004.0", "X86")
    assert b.dump_file == r"C:\BlaBlaBla\caloni\My Documents\My Dumps\cagou-geral.dmp"
    assert (b.dump_kind, b.dump_variety) == ("Mini Kernel Dump File", "small")
    assert b.symbol_path == r"SRV*C:\Symbols*\\symbolserver\OSSYMBOLS*(...)"
    assert b.os is not None
    assert (b.os.name, b.os.build, b.os.service_pack, b.os.processors) == ("Windows XP", 2600, "Service Pack 2", 4)
    assert b.os.arch == "x86"  # "Free x86 compatible"
    assert b.built_by == "2600.xpsp_sp2_rtm.040803-2158"
    assert b.edition_build_lab is None
    assert b.machine_name is None  # no Machine Name line at all
    assert (b.kernel_base, b.ps_loaded_module_list) == (0x804D7000, 0x8055C700)  # 32-bit, no backtick
    assert b.debug_session_time_raw == "Sat Dec 29 07:47:12.734 2007 (GMT-3)"
    assert b.debug_session_time == datetime(2007, 12, 29, 10, 47, 12, 734000, tzinfo=UTC)
    assert b.uptime_seconds == pytest.approx(15 * 60 + 13.728)
    assert b.bugcheck is not None
    assert (b.bugcheck.code, b.bugcheck.parameters) == (0xC, (0, 0, 0, 0))
    assert b.probably_caused_by is not None
    assert (b.probably_caused_by.image, b.probably_caused_by.symbol) == ("psseckbd.sys", "mydriver+199e")
    assert b.followup == "MachineOwner"


def test_t04_complete_dump_truncated_warning(transcripts_dir: Path) -> None:
    b = parse_banner(head(transcripts_dir, "T04"))
    assert (b.debugger_version, b.debugger_arch) == ("6.9.0003.113", "X86")
    assert b.dump_file == r"C:\Tests\BSOD\BugCheck7F\2010-03-24ClientMemory.dmp"
    assert (b.dump_kind, b.dump_variety) == ("Kernel Complete Dump File", "complete")
    assert b.truncated is True
    assert b.symbol_path == r"SRV*c:\tools\symbols*http://msdl.microsoft.com/download/symbols"
    assert b.os is not None
    assert (b.os.service_pack, b.os.processors, b.os.arch) == ("Service Pack 3", 2, "x86")
    assert b.built_by == "2600.xpsp_sp3_gdr.090804-1435"
    assert (b.kernel_base, b.ps_loaded_module_list) == (0x804D7000, 0x8055D720)
    assert b.debug_session_time == datetime(2010, 3, 24, 20, 51, 39, 216000, tzinfo=UTC)
    assert b.uptime_seconds == pytest.approx(5 * 60 + 23.843)
    assert b.bugcheck is not None
    assert (b.bugcheck.code, b.bugcheck.parameters) == (0x7F, (0xD, 0, 0, 0))
    assert b.probably_caused_by is not None
    assert (b.probably_caused_by.image, b.probably_caused_by.symbol) == ("MyDriver.sys", "MyDriver!KeBugCheckTest+2b")


def test_t11_newest_debugger(transcripts_dir: Path) -> None:
    b = parse_banner(head(transcripts_dir, "T11"))
    assert (b.debugger_version, b.debugger_arch) == ("10.0.29617.1000", "AMD64")
    assert b.dump_file == r"D:\Downloads\100126-20828-01.dmp"
    assert b.dump_kind_line == "Mini Kernel Dump File: Only registers and stack trace are available"
    assert b.dump_variety == "small"
    assert (b.os_name, b.build, b.processors) == ("Windows 10", 19041, 8)
    assert b.edition_build_lab is None
    assert b.machine_name is None
    assert (b.kernel_base, b.ps_loaded_module_list) == (0xFFFFF80505200000, 0xFFFFF80505E2A420)
    # 14:13:42.872 at UTC-5 is 19:13:42 UTC, which the same log's !errrec prints as "10/1/2026 19:13:42 (UTC)"
    assert b.debug_session_time == datetime(2026, 10, 1, 19, 13, 42, 872000, tzinfo=UTC)
    assert b.uptime_seconds == pytest.approx(2 * 60 + 9.764)
    assert b.bugcheck is None  # this banner has no "BugCheck X, {...}" summary


def test_t12_old_debugger_misnames_the_os(transcripts_dir: Path) -> None:
    b = parse_banner(head(transcripts_dir, "T12"))
    assert (b.debugger_version, b.debugger_arch) == ("6.12.0002.633", "AMD64")
    assert b.dump_file == r"C:\Users\30789\Desktop\101525-10578-01.dmp"
    assert b.os is not None
    assert b.os.raw == "Windows 7 Kernel Version 22621 MP (32 procs) Free x64"
    assert (b.os.name, b.os.build, b.os.processors) == ("Windows 7", 22621, 32)
    assert b.os.name_reliable is False  # the build is right, the name comes from the old debugger's table
    assert any("Windows 7" in w and "22621" in w for w in b.warnings)
    assert b.suite == ("TerminalServer", "SingleUserTS", "Personal")
    assert b.machine_name == ""
    assert (b.kernel_base, b.ps_loaded_module_list) == (0xFFFFF8066F000000, 0xFFFFF8066FC13580)
    assert b.debug_session_time == datetime(2025, 10, 15, 6, 9, 32, 146000, tzinfo=UTC)
    assert b.uptime_seconds == pytest.approx(4 * 60 + 8.827)
    assert b.bugcheck is not None
    assert b.bugcheck.code == 0x3B
    assert b.bugcheck.parameters == (0xC0000005, 0xFFFFF8066F2A6034, 0xFFFFA005550BD940, 0)
    assert b.probably_caused_by is None  # the summary has no "Probably caused by" line


def test_d01_vertarget(transcripts_dir: Path) -> None:
    v = parse_vertarget(output_of(transcripts_dir, "D01", "vertarget"))
    assert v.os is not None
    assert (v.os.name, v.os.build, v.os.processors, v.os.arch) == ("Windows 10", 9926, 4, "x64")
    assert (v.product, v.suite) == ("WinNt", ("TerminalServer", "SingleUserTS"))
    assert v.built_by == "9926.0.amd64fre.fbl_awesome1501.150119-1648"
    assert v.machine_name == ""  # printed as Machine Name: ""
    assert (v.kernel_base, v.ps_loaded_module_list) == (0xFFFFF8018D283000, 0xFFFFF8018D58AEF0)
    assert v.debug_session_time_raw == "Fri Feb 20 10:15:17.807 2015 (UTC - 8:00)"
    assert v.debug_session_time == datetime(2015, 2, 20, 18, 15, 17, 807000, tzinfo=UTC)
    assert v.uptime_raw == "0 days 01:31:58.931"
    assert v.uptime_seconds == pytest.approx(5518.931)
    assert v.extra == {}


def test_t06_mex_di_as_vertarget(transcripts_dir: Path) -> None:
    v = parse_vertarget(output_of(transcripts_dir, "T06", "!di"))
    assert (v.os_name, v.build, v.processors) == ("Windows 10", 22621, 4)
    assert v.edition_build_lab == "22621.1928.amd64fre.ni_release_svc_prod3.230622-0951"
    assert (v.kernel_base, v.ps_loaded_module_list) == (0xFFFFF8046F000000, 0xFFFFF8046FC130E0)
    assert v.debug_session_time == datetime(2023, 9, 21, 15, 52, 49, 284000, tzinfo=UTC)
    assert v.uptime_seconds == pytest.approx(2 * 60 + 18.209)
    assert v.extra["Computer Name"] == "Not Found"
    assert v.extra["SystemManufacturer"] == "Microsoft Corporation"
    assert v.extra["SystemProductName"] == "Virtual Machine"
    assert v.extra["Processor"] == "11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz"
    assert v.extra["Bugcheck"] == "19 (22, FFFFBD06D46E0000, 1, 0)"
    assert v.extra["KernelMode Dump Path"] == r"C:\Users\User\Desktop\Dumps\GitHub\MEMORY.DMP"


def test_t08_mex_di(transcripts_dir: Path) -> None:
    v = parse_vertarget(output_of(transcripts_dir, "T08", "!mex.di"))
    assert v.processors == 6
    assert v.build_lab == "22621.2506.amd64fre.ni_release_svc_prod3.231018-1809"
    assert v.kernel_base == 0xFFFFF80344600000
    assert v.debug_session_time == datetime(2023, 12, 2, 19, 51, 39, 664000, tzinfo=UTC)  # "Sat Dec  2" (2 spaces)


def test_os_line_uniprocessor_and_garbage() -> None:
    up = parse_os_line("Windows XP Kernel Version 2600 (Service Pack 3) UP Free x86 compatible")
    assert up is not None
    assert (up.multiprocessor, up.processors, up.arch) == (False, 1, "x86")
    assert parse_os_line("Windows is great") is None
    assert parse_session_time("Thu Oct  7 20:33:12.945 2021") is None  # no zone: not placed in UTC
    assert parse_session_time("sometime") is None
    assert parse_uptime("not available") is None
    assert parse_uptime("3 days 2:01:00") == 3 * 86400 + 2 * 3600 + 60


def test_empty_banner() -> None:
    b = parse_banner("")
    assert b.os is None
    assert b.dump_file is None
    assert b.warnings == ()
