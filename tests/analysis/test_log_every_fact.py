"""``report --from-log``: every fact a real debugger log states reaches CrashFacts (and its JSON).

Expectations were written by reading each log in ``../shared/transcripts`` (line numbers in the comments), never
from dbgauto's output. The short logs at the end are written in the exact shapes the debuggers print (cdb's
user-mode banner, WinDbg 6.x on XP without a time zone, an ARM64 kernel, a tail-only !analyze, UTF-16 logs).
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from dbgauto.analysis.facts import CrashFacts
from dbgauto.analysis.from_log import facts_from_log
from dbgauto.debugtext import decode_log, looks_like_debugger_log, read_log

TRANSCRIPTS = Path(__file__).resolve().parents[3] / "shared" / "transcripts"


def _facts(stem: str) -> CrashFacts:
    path = next(TRANSCRIPTS.glob(f"{stem}_*.log"), None)
    if path is None:
        pytest.skip(f"{stem} transcript not available")
    facts = facts_from_log(read_log(path), source=path)
    assert CrashFacts.from_dict(facts.to_dict()) == facts  # every new field goes through the codec
    return facts


def test_t03_xp_minidump() -> None:
    f = _facts("T03")
    d = f.debugger
    assert d is not None
    assert d.dump_file == r"C:\BlaBlaBla\caloni\My Documents\My Dumps\cagou-geral.dmp"  # line 8
    assert d.build_lab == "2600.xpsp_sp2_rtm.040803-2158"  # line 21 "Built by:"
    assert d.product == "WinNt"
    assert d.suite == ("TerminalServer", "SingleUserTS")  # line 20
    assert d.followup_ip == 0xBAC9199E  # lines 105-107
    assert d.symbol_name == "mydriver+199e"
    assert d.module_name == "mydriver"
    assert d.image_name == "mydriver.sys"
    assert d.image_timestamp == 0x42D2747C  # DEBUG_FLR_IMAGE_TIMESTAMP
    assert d.failure_bucket_id == "0xC_mydriver+199e"
    assert d.bucket_id == "0xC_mydriver+199e"
    assert d.default_bucket_id == "DRIVER_FAULT"
    assert d.followup == "MachineOwner"
    assert f.culprit is not None
    assert f.culprit.name == "mydriver.sys"
    assert f.culprit.address == 0xBAC9199E
    assert f.culprit.offset == 0x199E
    assert f.machine == "x86"
    assert f.to_dict()["debugger"]["followup_ip"] == "0xbac9199e"  # addresses are hex strings in the JSON


def test_t04_function_and_offset_from_symbol_name() -> None:
    f = _facts("T04")
    assert f.culprit is not None
    assert f.culprit.function == "KeBugCheckTest"  # SYMBOL_NAME:  MyDriver!KeBugCheckTest+0x2b
    assert f.culprit.offset == 0x2B
    assert f.culprit.address == 0xBA182D80  # FOLLOWUP_IP
    assert f.culprit.timestamp == 0x4BAA49D3
    assert f.debugger is not None
    assert f.debugger.build_lab == "2600.xpsp_sp3_gdr.090804-1435"


def test_t01_bucket_hash_offset_cpu() -> None:
    f = _facts("T01")
    d = f.debugger
    assert d is not None
    assert d.cpu == 2  # "2: kd> !analyze -v"
    assert d.build_lab == "19041.1.amd64fre.vb_release.191206-1406"  # Edition build lab
    assert d.bucket_id_func_offset == 0x1981
    assert d.failure_bucket_id == "AV_myfault!unknown_function"
    assert d.failure_id_hash == "{9745090a-9bce-ccba-c096-ca6e9ca04c64}"
    assert d.dump_file == r"C:\Windows\MEMORY.DMP"


def test_t07_dump_attributes_cab_name_exception() -> None:
    d = _facts("T07").debugger
    assert d is not None
    assert d.file_in_cab == "MEMORY_0x139.DMP"
    assert d.dump_file_attributes == 0x800
    assert d.bucket_id_func_offset == 0x11B1
    assert d.failure_id_hash == "{8ebd2998-ea64-b96c-aae8-2108d8c92247}"


def test_t08_function_with_private_symbols() -> None:
    f = _facts("T08")
    assert f.culprit is not None
    assert f.culprit.function == "AccessPageableMemory"  # SYMBOL_NAME:  TestDriver!AccessPageableMemory+0
    assert f.culprit.offset == 0
    assert f.debugger is not None
    assert f.debugger.cpu == 1  # "1: kd> !analyze -v"
    assert f.debugger.failure_bucket_id == "AV_CODE_AV_PAGED_IP_TestDriver!AccessPageableMemory"


def test_t11_triage_attributes_and_original_name() -> None:
    d = _facts("T11").debugger
    assert d is not None
    assert d.dump_file == r"D:\Downloads\100126-20828-01.dmp"
    assert d.file_in_cab == "100126-20828-01.dmp"
    assert d.dump_file_attributes == 0x8
    assert d.cpu == 2


def test_t12_personal_suite_irql_faulting_ip() -> None:
    f = _facts("T12")
    d = f.debugger
    assert d is not None
    assert d.suite == ("TerminalServer", "SingleUserTS", "Personal")  # line 14
    assert d.current_irql == 0
    assert d.faulting_ip == 0xFFFFF8066F2A6034  # lines 58-60
    assert d.default_bucket_id == "VISTA_DRIVER_FAULT"
    assert f.culprit is None  # Unknown_Image / Unknown_Module name no module


def test_d03_current_irql_and_parameter_texts_kept() -> None:
    f = _facts("D03")
    assert f.debugger is not None
    assert f.debugger.current_irql == 2  # CURRENT_IRQL:  2


def test_parameter_texts_the_log_prints_are_kept() -> None:
    text = """\
0: kd> !analyze -v
*******************************************************************************
*                        Bugcheck Analysis                                    *
*******************************************************************************

DRIVER_IRQL_NOT_LESS_OR_EQUAL (d1)
An attempt was made to access a pageable (or completely invalid) address at an
interrupt request level (IRQL) that is too high.
Arguments:
Arg1: ffffcf8e6f2a6000, memory referenced
Arg2: 0000000000000002, IRQL
Arg3: 0000000000000000, value 0 = read operation, 1 = write operation
Arg4: fffff8066f2a6034, address which referenced memory
"""
    f = facts_from_log(text)
    assert f.bugcheck is not None
    texts = [p.log_text for p in f.bugcheck.parameters]
    assert texts == [
        "memory referenced",
        "IRQL",
        "value 0 = read operation, 1 = write operation",
        "address which referenced memory",
    ]


def test_memory_corruption_is_a_failure_class_not_a_module() -> None:
    text = """\
BugCheck 1A, {41792, fffff6fb40000008, 400, 0}

Probably caused by : memory_corruption

Followup: memory_corruption
"""
    f = facts_from_log(text)
    assert f.culprit is None or f.culprit.name != "memory_corruption"
    text_v = """\
0: kd> !analyze -v
MEMORY_MANAGEMENT (1a)
Arguments:
Arg1: 0000000000041792, A corrupt PTE has been detected.
Arg2: fffff6fb40000008, Address of the PTE.
Arg3: 0000000000000400
Arg4: 0000000000000000

Debugging Details:
------------------

MODULE_NAME: hardware

IMAGE_NAME:  memory_corruption

FAILURE_BUCKET_ID:  0x1a_41792_memory_corruption_ONE_BIT

Followup:     memory_corruption
---------
"""
    f = facts_from_log(text_v)
    assert f.culprit is None
    assert f.debugger is not None
    assert f.debugger.failure_class == "memory_corruption"
    assert f.debugger.failure_bucket_id == "0x1a_41792_memory_corruption_ONE_BIT"


USER_MODE = """\
Microsoft (R) Windows Debugger Version 6.12.0002.633 AMD64
Copyright (c) Microsoft Corporation. All rights reserved.

CommandLine: C:\\app\\MyApp.exe
Symbol search path is: srv*
Executable search path is:
ModLoad: 00000001`3f6c0000 00000001`3f6e2000   MyApp.exe
Windows 7 Version 7601 (Service Pack 1) MP (2 procs) Free x64
Product: WinNt, suite: SingleUserTS Personal
(1a2c.1b3c): Access violation - code c0000005 (first chance)
First chance exceptions are reported before any exception handling.
This exception may be expected and handled.
0:000> .exr -1
ExceptionAddress: 000000013f6c1234 (MyApp!main+0x0000000000000034)
   ExceptionCode: c0000005 (Access violation)
  ExceptionFlags: 00000000
NumberParameters: 2
   Parameter[0]: 0000000000000001
   Parameter[1]: 0000000000000000
"""


def test_user_mode_cdb_banner_and_exception_record() -> None:
    f = facts_from_log(USER_MODE)
    assert f.os_build == 7601
    assert f.processors == 2
    assert f.machine == "x64"
    assert f.os_name == "Windows 7 Version 7601 (Service Pack 1) MP (2 procs) Free x64"
    d = f.debugger
    assert d is not None
    assert d.product == "WinNt"
    assert d.suite == ("SingleUserTS", "Personal")
    assert d.exception_code == 0xC0000005
    assert d.exception_address == 0x13F6C1234


def test_arm64_machine_name() -> None:
    text = """\
Windows 10 Kernel Version 22621 MP (8 procs) Free ARM 64-bit (AArch64)
Product: WinNt, suite: TerminalServer SingleUserTS
Edition build lab: 22621.1.arm64fre.ni_release.220506-1250
Kernel base = 0xfffff801`2a400000 PsLoadedModuleList = 0xfffff801`2b02a2f0
"""
    f = facts_from_log(text)
    assert f.machine == "ARM64"
    assert f.is_64bit is True
    assert f.debugger is not None
    assert f.debugger.build_lab == "22621.1.arm64fre.ni_release.220506-1250"


def test_xp_era_session_time_without_zone() -> None:
    text = """\
Microsoft (R) Windows Debugger  Version 6.6.0007.5
Loading Dump File [C:\\WINDOWS\\Minidump\\Mini071706-01.dmp]
Mini Kernel Dump File: Only registers and stack trace are available

Windows XP Kernel Version 2600 (Service Pack 2) UP Free x86 compatible
Product: WinNt, suite: TerminalServer SingleUserTS Personal
Built by: 2600.xpsp_sp2_gdr.050301-1519
Debug session time: Mon Jul 17 11:51:58 2006
System Uptime: 0 days 2:11:04
"""
    f = facts_from_log(text)
    d = f.debugger
    assert d is not None
    assert d.session_time_raw == "Mon Jul 17 11:51:58 2006"
    assert d.session_time_local == "2006-07-17T11:51:58"
    assert f.crash_time is None  # no zone printed: not a UTC instant
    assert f.uptime_seconds == 2 * 3600 + 11 * 60 + 4
    assert d.suite == ("TerminalServer", "SingleUserTS", "Personal")
    assert not any("session time" in w for w in f.warnings)


def test_tail_only_analyze() -> None:
    """The end of an !analyze -v pasted alone: no banner, no prompt, no header; the fields present still count."""
    text = """\
SYMBOL_NAME:  myfault+1981

MODULE_NAME: myfault

IMAGE_NAME:  myfault.sys

STACK_COMMAND:  .thread ; .cxr ; kb

BUCKET_ID_FUNC_OFFSET:  1981

FAILURE_BUCKET_ID:  AV_myfault!unknown_function

OS_VERSION:  10.0.19041.1

BUILDLAB_STR:  vb_release

FAILURE_ID_HASH:  {9745090a-9bce-ccba-c096-ca6e9ca04c64}

Followup:     MachineOwner
---------
"""
    assert looks_like_debugger_log(text)
    f = facts_from_log(text)
    assert f.culprit is not None
    assert f.culprit.name == "myfault.sys"
    assert f.culprit.offset == 0x1981
    d = f.debugger
    assert d is not None
    assert d.failure_bucket_id == "AV_myfault!unknown_function"
    assert d.failure_id_hash == "{9745090a-9bce-ccba-c096-ca6e9ca04c64}"
    assert d.build_lab == "vb_release"
    assert d.followup == "MachineOwner"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig"])
def test_utf16_logs_written_by_logopen_u(encoding: str, tmp_path: Path) -> None:
    path = next(TRANSCRIPTS.glob("T03_*.log"), None)
    if path is None:
        pytest.skip("T03 transcript not available")
    text = path.read_text(encoding="utf-8")
    log = tmp_path / "u.log"
    log.write_bytes(text.encode(encoding))
    assert read_log(log) == text
    assert facts_from_log(read_log(log)).to_dict()["debugger"]["image_timestamp"] == "0x42d2747c"


def test_decode_without_bom() -> None:
    assert decode_log("0: kd> k\n".encode("utf-16-le")) == "0: kd> k\n"
    assert decode_log(codecs.BOM_UTF16_BE + "kd> k".encode("utf-16-be")) == "kd> k"


def test_not_a_debugger_log() -> None:
    assert not looks_like_debugger_log("Shopping list:\n- milk\n- bread\n")
