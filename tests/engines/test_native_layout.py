"""The native engine's text layout against real debugger output (transcripts), for register sets it never
sees in the one real dump (x86) and for values copied from the transcripts."""

from __future__ import annotations

import re
from pathlib import Path

from dbgauto.engines import native_commands as fmt
from dbgauto.kdump.constants import Machine


def _lines(transcripts_dir: Path, stem: str, first: str, count: int) -> list[str]:
    text = next(transcripts_dir.glob(f"{stem}_*.log")).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith(first))
    return text[start : start + count]


def _target(machine: int, registers: dict[str, int], *, is_64bit: bool) -> fmt.Target:
    return fmt.Target(
        path=Path("x.dmp"),
        dump_type=4,
        is_64bit=is_64bit,
        machine=machine,
        major_version=15,
        build=2600,
        number_processors=1,
        product_type=1,
        suite_mask=0,
        kernel_base=None,
        ps_loaded_module_list=None,
        system_time=None,
        uptime_100ns=None,
        bugcheck_code=None,
        bugcheck_parameters=(0, 0, 0, 0),
        registers=registers,
        pc=None,
        sp=None,
    )


def _regs(lines: list[str]) -> dict[str, int]:
    return {k: int(v, 16) for k, v in re.findall(r"\b([a-z0-9]+)=([0-9a-f]+)\b", "\n".join(lines))}


def test_x86_registers_match_the_debuggers_layout_d03(transcripts_dir: Path) -> None:
    real = _lines(transcripts_dir, "D03", "eax=81cc86dc", 3)
    t = _target(Machine.I386, _regs(real), is_64bit=False)
    assert fmt.registers(t).splitlines() == real


def test_x64_registers_match_the_debuggers_layout_t12(transcripts_dir: Path) -> None:
    real = _lines(transcripts_dir, "T12", "rax=0000000000000000 rbx=0000000000000004", 8)
    t = _target(Machine.AMD64, _regs(real), is_64bit=True)
    assert fmt.registers(t).splitlines() == real


def test_32_bit_lm_layout_d05(transcripts_dir: Path) -> None:
    header = _lines(transcripts_dir, "D05", "start    end        module name", 1)
    t = _target(Machine.I386, {}, is_64bit=False)
    t.modules = [fmt.Module("\\SystemRoot\\system32\\DRIVERS\\sysaudio.sys", 0xF9F73000, 0xCD80)]
    out = fmt.lm(t).splitlines()
    assert out[0] == header[0]
    assert out[1].startswith("f9f73000 f9f7fd80   sysaudio     ".rstrip())


def test_os_line_for_old_and_new_builds() -> None:
    t = _target(Machine.I386, {}, is_64bit=False)
    t.number_processors = 4
    assert fmt.os_line(t) == "Windows XP Kernel Version 2600 MP (4 procs) Free x86 compatible"
    t.build, t.machine, t.number_processors = 22621, Machine.AMD64, 1
    assert fmt.os_line(t) == "Windows 10 Kernel Version 22621 UP (1 procs) Free x64"


def test_uptime_and_session_time_layout() -> None:
    assert fmt.uptime(((2 * 60 + 9) * 1000 + 764) * 10_000) == "0 days 0:02:09.764"  # T11's uptime
    assert fmt.uptime(None) == "(not recorded in the dump)"
