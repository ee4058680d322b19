"""x86 unwinding through FPO frames mixed with EBP frames, on real clang/lld-built code and its PDB.

FPO_C is compiled with ``-fomit-frame-pointer`` (clang emits ``.cv_fpo_*`` frame data, lld writes the PDB's new
FPO stream; fpo_n even uses ebp as a general register; wide_w passes 24 bytes of arguments, std_s is stdcall),
EBP_C with frame pointers. unicorn runs top_a and,
before every instruction, the walker unwinds from the live registers with the PDB's FrameData. Expectations
come from the emulator (the call stack it saw, each caller's eip/esp, ebp at each callee's entry) and from
``llvm-pdbutil dump --fpo`` (the records), never from dbgauto.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from dbgauto_testkit.winbuild import EBP_C, FPO_C, FPO_CHAIN, build_multi, describe, trace

from dbgauto.errors import SymbolError
from dbgauto.pe import PeImage
from dbgauto.symbols.fpo import FrameDataTable, frame_data_from_pdb, load_frame_data
from dbgauto.unwind import Module, unwind, x86fpo

DEBUG = ("-g", "-gcodeview")


@pytest.fixture(scope="module")
def dll(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_multi(
        tmp_path_factory.mktemp("fpo"),
        "mixed",
        "x86",
        [("fpo", FPO_C, ("-fomit-frame-pointer", *DEBUG)), ("ebp", EBP_C, ("-fno-omit-frame-pointer", *DEBUG))],
    )


def _pdbutil_rows(pdb: Path) -> list[tuple]:
    if shutil.which("llvm-pdbutil") is None:
        pytest.skip("needs llvm-pdbutil (Debian package llvm)")
    out = subprocess.run(["llvm-pdbutil", "dump", "--fpo", str(pdb)], capture_output=True, text=True, check=True)
    rows = []
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 11 and re.fullmatch(r"[0-9A-F]{8}", cells[0]):
            nums = [int(cells[0], 16), *(int(c) for c in cells[1:7])]
            rows.append((*nums, cells[9] == "true", cells[10]))
    return rows


def test_frame_data_matches_llvm_pdbutil(dll: Path) -> None:
    rows = _pdbutil_rows(dll.with_suffix(".pdb"))
    table = load_frame_data(dll.with_suffix(".pdb"))
    ours = [
        (
            e.rva,
            e.code_size,
            e.locals_size,
            e.params_size,
            e.max_stack,
            e.prolog_size,
            e.saved_regs_size,
            e.is_function_start,
            (e.program or "").strip(),
        )
        for e in table.entries
    ]
    assert len(rows) >= 10
    assert sorted(ours) == sorted(rows)
    assert any("$ebp $T0 4 - ^ =" in r[-1] and ".raSearch" in r[-1] for r in rows)  # FPO code saving ebp


def _check_every_instruction(dll: Path, *, with_fpo: bool) -> tuple[int, list[str]]:
    info = describe(dll)
    table = load_frame_data(dll.with_suffix(".pdb"))
    base = info.image_base
    mods = [Module("mixed.dll", base, info.size_of_image)]
    bad: list[str] = []
    seen = [0]

    def on_insn(pc: int, regs: dict[str, int], stack, read) -> None:
        img = PeImage.from_memory(read, base)
        walk = unwind(
            "x86",
            regs,
            read,
            mods,
            image_for=lambda m: img,
            allow_scan=False,
            frame_data=(lambda m: table) if with_fpo else None,
        )
        seen[0] += 1
        where = f"{stack[-1].name}+{pc - base - info.exports[stack[-1].name]:#x}"
        want_pcs = [pc, *(a.ret for a in reversed(stack[1:]))]
        want_sps = [regs["esp"], *[a.sp + 4 for a in reversed(stack)][:-1]]
        want_ebp = [regs["ebp"], *[a.saved["ebp"] for a in reversed(stack)][:-1]]
        got = [(f.pc, f.sp, f.fp) for f in walk.frames]
        if got != list(zip(want_pcs, want_sps, want_ebp, strict=True)) or walk.warnings:
            bad.append(f"{where}: {[tuple(hex(x or 0) for x in g) for g in got]} {walk.warnings}")
            return
        if with_fpo and any(f.trust != "cfi" for f in walk.frames[1:]):
            bad.append(f"{where}: trust {[f.trust for f in walk.frames]}")
        # one step restores the callee-saved registers the innermost function saved
        live = x86fpo.regs_from_mapping(regs)
        code = read(pc, 32)
        step = x86fpo.epilog_step(code, live, read) if code else None
        fd = table.lookup(pc - base)
        if step is None and with_fpo and fd is not None:
            plausible = lambda v: base + 0x1000 <= v < base + 0x2000  # noqa: E731 (.text)
            step = x86fpo.step(fd, live, read, callee_params=0, plausible=plausible, interrupted=True)
        if with_fpo and step is not None:
            for name in ("ebx", "esi", "edi", "ebp"):
                got_v = step[0][x86fpo.REGS.index(name)]
                if got_v != stack[-1].saved[name]:
                    bad.append(f"{where}: {name} = {got_v:#x}, at entry {stack[-1].saved[name]:#x}")

    trace(dll, "x86", "top_a", on_insn)
    return seen[0], bad


def test_exact_chain_through_fpo_and_ebp_frames_at_every_instruction(dll: Path) -> None:
    checked, bad = _check_every_instruction(dll, with_fpo=True)
    assert checked > 60
    assert bad == [], "\n".join(bad[:20])


def test_ebp_chain_alone_breaks_on_fpo_frames(dll: Path) -> None:
    """Without the frame data the EBP chain loses frames (fpo_n reuses ebp): FPO is what makes them exact."""
    checked, bad = _check_every_instruction(dll, with_fpo=False)
    assert checked > 60
    assert len(bad) > checked // 4


# ---- bad input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "program",
    [
        "$T0 .raSearch = $eip $T0 ^ = $esp $T0 4 + = +",  # operator without operands
        "$T0 $nosuch = $eip $T0 ^ = $esp $T0 4 + =",  # unknown variable
        "$T0 .raSearch = $eip $T0 4 0 / ^ =",  # division by zero
        "$eip 0 ^ = $esp 1 =",  # unreadable memory
        " ".join(["1"] * 100),  # stack overflow
        "1 " * 300,  # too many tokens
        "$T0 .raSearch = $eip $T0 ^ = $esp $T0 4 + = 5",  # a value left over
        "$T0 .raSearch = $eip $T0 ^ = \x00\xff =",  # garbage
        "",  # assigns nothing
    ],
)
def test_bad_program_strings_are_warnings(dll: Path, program: str) -> None:
    good = load_frame_data(dll.with_suffix(".pdb"))
    broken = FrameDataTable([_with_program(e, program) for e in good.entries])
    info = describe(dll)
    base = info.image_base
    got: dict = {}

    def on_insn(pc, regs, stack, read) -> None:
        if got or stack[-1].name != "leaf_c" or pc - base - info.exports["leaf_c"] < 8:
            return
        img = PeImage.from_memory(read, base)
        got["walk"] = unwind(
            "x86",
            regs,
            read,
            [Module("mixed.dll", base, info.size_of_image)],
            image_for=lambda m: img,
            frame_data=lambda m: broken,
        )

    trace(dll, "x86", "top_a", on_insn)
    walk = got["walk"]
    assert any("frame data" in w for w in walk.warnings), walk.warnings
    assert 1 <= len(walk.frames) <= 64


def _with_program(e, program: str):
    from dataclasses import replace

    return replace(e, program=program)


def test_damaged_pdb_is_a_typed_error(dll: Path, tmp_path: Path) -> None:
    data = dll.with_suffix(".pdb").read_bytes()
    with pytest.raises(SymbolError):
        frame_data_from_pdb(data[:4096], "cut.pdb")
    with pytest.raises(SymbolError):
        frame_data_from_pdb(b"\0" * 8192, "zero.pdb")
    with pytest.raises(SymbolError):
        load_frame_data(tmp_path / "missing.pdb")


def test_frame_data_source_that_raises_is_a_warning(dll: Path) -> None:
    info = describe(dll)

    def boom(m):
        raise OSError("symbol store offline")

    regs = {"eip": info.image_base + info.exports["leaf_c"], "esp": 0x300000, "ebp": 0}
    walk = unwind("x86", regs, lambda va, n: None, [Module("mixed.dll", info.image_base, 0x10000)], frame_data=boom)
    assert any("symbol store offline" in w for w in walk.warnings)


def test_corrupt_saved_ebp_ends_the_walk_with_a_warning(dll: Path) -> None:
    """ebp_m's saved ebp overwritten to point back down the stack (at leaf_c's return address, as a looping
    chain would): top_a's EBP-based program would move esp down — the walk stops with a warning."""
    info = describe(dll)
    base = info.image_base
    table = load_frame_data(dll.with_suffix(".pdb"))
    got: dict = {}

    def on_insn(pc, regs, stack, read) -> None:
        if got or stack[-1].name != "leaf_c" or pc - base - info.exports["leaf_c"] < 8:
            return
        ebp_m = next(a for a in stack if a.name == "ebp_m")
        slot = ebp_m.sp - 4  # push ebp, the first instruction of ebp_m
        bad = (stack[-1].sp - 4).to_bytes(4, "little")

        def patched(va: int, n: int):
            b = read(va, n)
            if b is None:
                return None
            b = bytearray(b)
            for i in range(4):
                if va <= slot + i < va + n:
                    b[slot + i - va] = bad[i]
            return bytes(b)

        img = PeImage.from_memory(read, base)
        got["walk"] = unwind(
            "x86",
            regs,
            patched,
            [Module("mixed.dll", base, info.size_of_image)],
            image_for=lambda m: img,
            frame_data=lambda m: table,
            allow_scan=False,
        )

    trace(dll, "x86", "top_a", on_insn)
    walk = got["walk"]
    assert len(walk.frames) == len(FPO_CHAIN)  # every real frame; top_a's (corrupt) caller is refused
    assert any("went down" in w or "loops" in w for w in walk.warnings), walk.warnings
