""" "(TrapFrame @ ADDR)" through the verdict: compiled code that builds a _KTRAP_FRAME (clang/lld, run in unicorn,
the same handler shape as tests/unwind/test_trapframe.py) laid out as a large dump's parts, unwound by the facts
layer, and shown by the native ``kv``, ``!analyze -v`` (TRAP_FRAME) and the TXT/MD/HTML reports in the form of
real WinDbg output (transcript T01's ``kv``; D01 ``!thread``).

Independent expectations: the trap frame's address is where the assembly put it (the machine frame the "CPU"
pushed, at the handler's entry stack pointer + 8, minus Rip's offset in the ISF tables' _KTRAP_FRAME); the line
shape is T01's ``kv`` line with its hex digits masked; the debugger-output parser (written for real transcripts)
reads our line's ``trap_frame`` back.
"""

from __future__ import annotations

import dataclasses
import json
import lzma
import re
from pathlib import Path

import pytest
from dbgauto_testkit.dumpsynth import amd64_context
from dbgauto_testkit.winbuild import Run, build, function_of, run_until_break

from dbgauto.analysis.facts import CrashFacts, StackFact
from dbgauto.analysis.stack import unwound_stack
from dbgauto.debugtext import parse_analyze, parse_stack
from dbgauto.engines import native_commands as fmt
from dbgauto.kdump.constants import Machine
from dbgauto.kdump.reader import KernelDump
from dbgauto.kdump.records import LoadedDriver
from dbgauto.kdump.structs.context import parse_context
from dbgauto.kernel.parts import KernelParts
from dbgauto.report.render import ReportRenderer

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
T01 = SHARED / "transcripts" / "T01_kernel_bitmap_dump_win10_19041_windbgpreview_ja.log"
KTRAP_S = (Path(__file__).resolve().parents[1] / "unwind" / "test_trapframe.py").read_text()
KTRAP_S = re.search(r'KTRAP_S = r"""(.*?)"""', KTRAP_S, re.S).group(1)  # the handler-shaped assembly


def _isf_rip_offset() -> int:
    tables = sorted((SHARED / "symbols" / "ntkrnlmp.pdb").glob("*.json.xz"))
    if not tables:
        pytest.skip("no ntkrnlmp ISF tables in ../shared/symbols")
    with lzma.open(tables[0]) as fh:
        return json.load(fh)["user_types"]["_KTRAP_FRAME"]["fields"]["Rip"]["offset"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    exports = ("/export:top3", "/export:victim", "/export:kpf", "/export:leaf3")
    dll = build(tmp_path_factory.mktemp("ktrapv"), "ktrap", "x64", asm=KTRAP_S, link=("/dll", "/noentry", *exports))
    return run_until_break(dll, "x64", "top3")


class _Memory:
    def __init__(self, run: Run) -> None:
        self.run = run

    def read(self, va: int, size: int) -> bytes | None:
        return self.run.read(va, size)


class _Names:
    """Function names from the linker's exports; ``kpf`` is named as the kernel's page-fault handler."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def name(self, address: int) -> tuple[str, str | None, int] | None:
        info = self.run.info
        rva = address - info.image_base
        fn = function_of(info, rva)
        if fn is None:
            return None
        return "ktrap", "KiPageFault" if fn == "kpf" else fn, rva - info.exports[fn]


def _parts(run: Run, code: int, params: tuple[int, int, int, int]) -> KernelParts:
    header = KernelDump.open(SHARED / "dumps" / "triage_x64.dmp").header  # a real header, made a large dump's
    header = dataclasses.replace(header, dump_type=1, bugcheck_code=code, bugcheck_parameters=params)
    sp = run.regs["rsp"]
    return KernelParts(
        header=header,
        is_64bit=True,
        machine=Machine.AMD64,
        context=parse_context(Machine.AMD64, amd64_context(run.regs)),
        kdbg=None,
        processor=0,
        processor_blocks=[],
        prcb_va=None,
        prcb=None,
        thread_va=None,
        thread=None,
        process_va=None,
        process=None,
        top_of_stack=sp,
        stack=run.read(sp, 0x1000),
        stack_base=sp + 0x1000,
        drivers=[
            LoadedDriver("\\SystemRoot\\system32\\drivers\\ktrap.sys", run.info.image_base, run.info.size_of_image)
        ],
        unloaded_drivers=None,
        mm=None,
        memory=_Memory(run),
    )


def _facts(run: Run) -> CrashFacts:
    parts = _parts(run, 0x50, (0, 0, 0, 0))
    walked = unwound_stack(parts, bugcheck_code=0x50, parameters=[0, 0, 0, 0], symbolizer=_Names(run))
    return CrashFacts(
        is_64bit=True,
        stack=StackFact(kind=walked.kind, frames=walked.frames),
        experimental={"trap_frame": f"{walked.trap_frame:#x}"} if walked.trap_frame else {},
    )


def _tick(v: int) -> str:
    return f"{v >> 32:08x}`{v & 0xFFFFFFFF:08x}"


def _target(run: Run, facts: CrashFacts) -> fmt.Target:
    return fmt.Target(
        path=Path("compiled.dmp"),
        dump_type=1,
        is_64bit=True,
        machine=Machine.AMD64,
        major_version=15,
        build=19041,
        number_processors=1,
        product_type=1,
        suite_mask=0,
        kernel_base=None,
        ps_loaded_module_list=None,
        system_time=None,
        uptime_100ns=None,
        bugcheck_code=0x50,
        bugcheck_parameters=(0, 0, 0, 0),
        registers=dict(run.regs),
        pc=run.regs["rip"],
        sp=run.regs["rsp"],
        verdict=lambda: facts,
        read=run.read,
    )


def test_the_trap_frame_address_is_where_the_handler_built_it(run: Run) -> None:
    trap = run.entry_sp["kpf"] + 8 - _isf_rip_offset()
    f = _facts(run)
    assert f.stack is not None
    names = [fr.function for fr in f.stack.frames]
    assert names == ["leaf3", "KiPageFault", "victim", "top3"]
    assert [fr.trap_frame_at for fr in f.stack.frames] == [None, trap, None, None]
    assert f.stack.frames[1].address == trap  # KiPageFault's Child-SP is its trap frame, as in T01 and T08
    assert f.experimental["trap_frame"] == f"{trap:#x}"


def test_kv_line_has_the_windbg_form(run: Run) -> None:
    if not T01.is_file():
        pytest.skip("no transcript T01 in ../shared")
    trap = run.entry_sp["kpf"] + 8 - _isf_rip_offset()
    facts = _facts(run)
    out = fmt.stack(_target(run, facts), "", "kv")
    lines = out.splitlines()
    real = [ln for ln in T01.read_text(encoding="utf-8").splitlines() if "(TrapFrame @" in ln and ln[:2] == "07"]
    assert lines[1] == next(ln for ln in T01.read_text(encoding="utf-8").splitlines() if ln.startswith(" # Child-SP"))
    ours = next(ln for ln in lines if "TrapFrame" in ln)
    assert ours.endswith(f"ktrap!KiPageFault+0x{_kpf_offset(run, facts):x} (TrapFrame @ {_tick(trap)})")

    def shape(line: str) -> str:
        head, _, _site = line.rpartition(" : ")
        return re.sub(r"[0-9a-f?]", "h", head) + " : SITE" + line[line.index(" (TrapFrame @") :].translate(_DIGITS)

    assert shape(ours) == shape(real[0])
    frames = parse_stack(out)
    assert [fr.trap_frame for fr in frames] == [None, trap, None, None]
    assert frames[1].function == "KiPageFault"
    # plain k shows the same unwound frames without args or trap frames, as WinDbg's k does (D01, T07)
    k = fmt.stack(_target(run, facts), "", "k")
    assert "TrapFrame" not in k
    assert "Stack scan" not in k
    t07 = T01.parent / "T07_kernel_memorydmp_kernel_security_check_failure_139_insighteng.log"
    if t07.is_file():
        real_k = t07.read_text(encoding="utf-8").splitlines()
        head = next(i for i, ln in enumerate(real_k) if re.fullmatch(r" # Child-SP +RetAddr +Call Site", ln))
        assert k.splitlines()[1] == real_k[head]
        assert re.sub(r"[0-9a-f]", "h", k.splitlines()[2]).split("     ")[0] == re.sub(
            r"[0-9a-f]", "h", real_k[head + 1]
        ).split("     ")[0]
    k_frames = parse_stack(k)
    assert [(fr.function, fr.child_sp) for fr in k_frames] == [(fr.function, fr.child_sp) for fr in frames]


_DIGITS = str.maketrans("0123456789abcdef", "hhhhhhhhhhhhhhhh")


def _kpf_offset(run: Run, facts: CrashFacts) -> int:
    assert facts.stack is not None
    return facts.stack.frames[1].value - run.info.image_base - run.info.exports["kpf"]


def test_analyze_prints_the_trap_frame_and_its_registers(run: Run) -> None:
    trap = run.entry_sp["kpf"] + 8 - _isf_rip_offset()
    out = fmt.analyze(_target(run, _facts(run)))
    assert f"TRAP_FRAME:  {trap:016x} -- (.trap 0x{trap:016x})" in out
    saved_rip = int.from_bytes(run.read(trap + _isf_rip_offset(), 8), "little")
    assert f"rip={saved_rip:016x}" in out
    assert "STACK_TEXT:" in out
    assert "TrapFrame" not in out.split("STACK_TEXT:")[1]
    parsed = parse_analyze(out).fields["TRAP_FRAME"].splitlines()
    real = parse_analyze(T01.read_text(encoding="utf-8")).fields["TRAP_FRAME"].splitlines() if T01.is_file() else None
    assert parsed[0] == f"{trap:016x} -- (.trap 0x{trap:016x})"
    if real is not None:  # the same lines as WinDbg's: header, two NOTE lines, six register rows, flags
        assert [re.sub("[0-9a-f]", "h", ln) for ln in parsed[:9]] == [re.sub("[0-9a-f]", "h", ln) for ln in real[:9]]
        flags = re.compile(r"iopl=\d {9}(?:[a-z]{2} ){7}[a-z]{2}")
        assert flags.fullmatch(parsed[9])
        assert flags.fullmatch(real[9])


@pytest.mark.parametrize("form", ["txt", "md", "html"])
def test_reports_show_the_trap_frame(run: Run, form: str) -> None:
    trap = run.entry_sp["kpf"] + 8 - _isf_rip_offset()
    text = ReportRenderer().render_dump(_facts(run), form)
    assert f"(TrapFrame @ {_tick(trap)})" in text
    assert text.count("TrapFrame @") == 1
