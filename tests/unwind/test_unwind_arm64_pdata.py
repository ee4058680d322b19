"""ARM64 unwinding by .pdata/.xdata on real compiled code, checked at every executed instruction.

clang/lld build the functions of PROLOGS_C for aarch64-pc-windows-msvc twice (with and without frame
pointers); unicorn executes them and, before every instruction, the unwinder walks the stack from the live
registers. The expectation is what the emulator observed, never dbgauto: the call stack (pushed at each
function's first instruction, popped at the return), each caller's pc (the lr at the callee's entry) and sp
(the callee's entry sp), and the callee-saved registers x19-x28, x29, d8-d15 at the callee's entry, which
one unwind step must restore exactly — inside prologs and epilogs too. llvm-readobj's listing (an
independent reader) proves the images hold both packed and unpacked unwind data and the codes named below.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dbgauto_testkit.winbuild import (
    CUSTOM_EXPORTS,
    CUSTOM_S,
    PROLOGS_C,
    PROLOGS_CHAIN,
    RARE_EXPORTS,
    RARE_S,
    STACK_LOW,
    STACK_SIZE,
    build,
    describe,
    function_of,
    readobj,
    run_until_break,
    trace,
)

from dbgauto.pe import PeImage
from dbgauto.unwind import Module, unwind
from dbgauto.unwind import arm64 as A

BUILDS = {"fp": ("-fno-omit-frame-pointer",), "nofp": ("-fomit-frame-pointer",)}

# Unwind-code classes by their first byte (Microsoft's table), to read llvm-readobj's listing.
_CLASSES = [
    (0x00, 0x1F, "alloc_s"),
    (0x20, 0x3F, "save_r19r20_x"),
    (0x40, 0x7F, "save_fplr"),
    (0x80, 0xBF, "save_fplr_x"),
    (0xC0, 0xC7, "alloc_m"),
    (0xC8, 0xCB, "save_regp"),
    (0xCC, 0xCF, "save_regp_x"),
    (0xD0, 0xD3, "save_reg"),
    (0xD4, 0xD5, "save_reg_x"),
    (0xD6, 0xD7, "save_lrpair"),
    (0xD8, 0xD9, "save_fregp"),
    (0xDA, 0xDB, "save_fregp_x"),
    (0xDC, 0xDD, "save_freg"),
    (0xDE, 0xDE, "save_freg_x"),
    (0xE0, 0xE0, "alloc_l"),
    (0xE1, 0xE1, "set_fp"),
    (0xE2, 0xE2, "add_fp"),
    (0xE3, 0xE3, "nop"),
    (0xE4, 0xE4, "end"),
    (0xE6, 0xE6, "save_next"),
]


def _classes(listing: str) -> set[str]:
    out = set()
    for m in re.finditer(r"^\s*0x([0-9a-f]{2})[0-9a-f]*\s+;", listing, re.M):
        b = int(m.group(1), 16)
        out |= {name for lo, hi, name in _CLASSES if lo <= b <= hi}
    return out


@pytest.fixture(scope="module")
def dlls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        k: build(tmp_path_factory.mktemp(f"prologs_{k}"), "prologs", "arm64", c_source=PROLOGS_C, cflags=flags)
        for k, flags in BUILDS.items()
    }


def test_images_hold_packed_and_unpacked_unwind_data(dlls: dict[str, Path]) -> None:
    listing = "".join(readobj(p, "--unwind") for p in dlls.values())
    packed = re.findall(r"RegF: (\d+)\s+RegI: (\d+)\s+HomedParameters: \w+\s+CR: (\d)", listing)
    assert packed
    assert "ExceptionData {" in listing
    assert {cr for _, _, cr in packed} >= {"1", "3"}  # lr alone, and the <x29, lr> record
    assert any(int(f) >= 1 for f, _, _ in packed)
    assert any(int(i) % 2 for _, i, _ in packed)
    assert "EpiloguePacked: Yes" in listing
    assert "EpilogueScopes: 1" in listing
    need = {"alloc_m", "alloc_l", "save_r19r20_x", "save_fplr", "save_fplr_x", "save_reg", "save_reg_x"}
    need |= {"save_fregp", "save_freg", "set_fp", "add_fp", "save_next", "end"}
    assert need <= _classes(listing), need - _classes(listing)


def _check_every_instruction(
    dll: Path, *, hide_pdata: bool = False, entry: str = "top_a", arg: int = 3
) -> tuple[int, list[str]]:
    """Unwind before every instruction; return (instructions checked, mismatches)."""
    bad: list[str] = []
    seen = [0]
    state: dict = {}

    def on_insn(pc: int, regs: dict[str, int], stack, read) -> None:
        if "info" not in state:
            return
        info = state["info"]
        base = info.image_base
        mods = [Module("prologs.dll", base, info.size_of_image)]
        img = PeImage.from_memory(read, base)
        src = (lambda m: _NoPdata(img)) if hide_pdata else (lambda m: img)
        walk = unwind("arm64", regs, read, mods, image_for=src, allow_scan=False)
        seen[0] += 1
        where = f"{stack[-1].name}+{pc - base - info.exports[stack[-1].name]:#x}"
        want_pcs = [pc] + [a.ret for a in reversed(stack[1:])]
        want_sps = [regs["sp"], *[a.sp for a in reversed(stack)][:-1]]
        got_pcs = [f.pc for f in walk.frames]
        if got_pcs != want_pcs or [f.sp for f in walk.frames] != want_sps or walk.warnings:
            bad.append(f"{where}: pcs {[hex(p) for p in got_pcs]} want {[hex(p) for p in want_pcs]} {walk.warnings}")
            return
        if hide_pdata:
            return
        if any(f.trust != "cfi" for f in walk.frames[1:]):
            bad.append(f"{where}: trust {[f.trust for f in walk.frames]}")
        # one step from the live registers restores the callee-saved registers the function saved
        tab = img.exception_table()
        fn = tab.lookup(pc - base)
        if fn is None:
            return  # a leaf: nothing saved, nothing to restore
        res, why = A.step(img, fn, pc, A.regs_from_mapping(regs), read, exact=True)
        if res is None:
            bad.append(f"{where}: {why}")
            return
        for name, want in stack[-1].saved.items():
            if name.startswith("d"):
                got = res.dregs.get(int(name[1:]), regs[name])
            else:
                got = res.regs[A.FP if name == "fp" else int(name[1:])]
            if got != want:
                bad.append(f"{where} ({res.where}): {name} = {got:#x}, at entry {want:#x}")
        if res.regs[A.SP] != stack[-1].sp or res.pc != stack[-1].ret:
            bad.append(f"{where} ({res.where}): sp/pc {res.regs[A.SP]:#x}/{res.pc:#x}")

    state["info"] = describe(dll)
    trace(dll, "arm64", entry, on_insn, arg=arg)
    return seen[0], bad


@pytest.mark.parametrize("build_kind", sorted(BUILDS))
def test_exact_chain_and_registers_at_every_instruction(dlls: dict[str, Path], build_kind: str) -> None:
    checked, bad = _check_every_instruction(dlls[build_kind])
    assert checked > 150
    assert bad == [], "\n".join(bad[:20])


def test_frame_pointer_chain_alone_fails_without_frame_pointers(dlls: dict[str, Path]) -> None:
    """The same walk by x29 records only (the exception directory hidden) loses callers in the build
    without frame pointers: .pdata is what makes those stacks exact."""
    checked, bad = _check_every_instruction(dlls["nofp"], hide_pdata=True)
    assert checked > 150
    assert len(bad) > checked // 4


class _NoPdata:
    def __init__(self, img: PeImage) -> None:
        self._img = img

    def __getattr__(self, name: str):
        return getattr(self._img, name)

    def exception_table(self):
        return None


@pytest.fixture(scope="module")
def rare_dll(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(
        tmp_path_factory.mktemp("rare"), "prologs", "arm64", asm=RARE_S, link=("/dll", "/noentry", *RARE_EXPORTS)
    )


def test_rare_codes_and_two_epilogs_at_every_instruction(rare_dll: Path) -> None:
    listing = readobj(rare_dll, "--unwind")
    need = {"save_lrpair", "save_fregp_x", "save_freg_x", "save_freg", "save_reg_x", "alloc_s", "alloc_m", "nop"}
    assert need | {"add_fp", "save_next", "save_r19r20_x"} <= _classes(listing)
    assert "EpilogueScopes: 2" in listing
    for arg in (0, 1):  # each epilog in turn
        checked, bad = _check_every_instruction(rare_dll, entry="rare_top", arg=arg)
        assert checked > 45
        assert bad == [], "\n".join(bad[:20])


@pytest.fixture(scope="module")
def custom_dll(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("custom")
    return build(tmp, "custom", "arm64", asm=CUSTOM_S, link=("/dll", "/noentry", *CUSTOM_EXPORTS))


@pytest.mark.parametrize("kind", ["mf", "ctx", "trap"])
def test_machine_frame_context_and_trap_frame(custom_dll: Path, kind: str) -> None:
    """MSFT_OP_MACHINE_FRAME / CONTEXT / TRAP_FRAME: the handler's caller is the interrupted code at the pc
    the frame saved (not a return address), on the stack pointer it saved; the walk continues from there."""
    listing = readobj(custom_dll, "--unwind")
    assert {"mf": "machine frame", "ctx": "context", "trap": "trap frame"}[kind] in listing
    run = run_until_break(custom_dll, "arm64", f"{kind}_top")
    mods = [Module("custom.dll", run.info.image_base, run.info.size_of_image)]
    walk = unwind(
        "arm64", run.regs, run.read, mods, image_for=lambda m: PeImage.from_memory(run.read, m.base), allow_scan=False
    )
    names = [function_of(run.info, f.offset) for f in walk.frames]
    assert names == [f"{kind}_leaf", f"{kind}_handler", f"{kind}_resumed", f"{kind}_top"], (names, walk.warnings)
    assert walk.warnings == []
    assert walk.frames[2].pc == run.info.image_base + run.info.exports[f"{kind}_resumed"]  # the saved pc itself
    assert walk.frames[2].sp == run.entry_sp[f"{kind}_int"] - 32  # its prolog's stp x29, x30, [sp, #-32]!
    assert walk.frames[3].sp == run.entry_sp[f"{kind}_int"]
    assert [f.trust for f in walk.frames[1:]] == ["cfi"] * 3


# ---- bad input: bounded work, warnings, never an exception ------------------------------------------------------
def _overlay(read, patches: dict[int, bytes]):
    def rd(va: int, size: int) -> bytes | None:
        got = read(va, size)
        if got is None:
            return None
        b = bytearray(got)
        for at, data in patches.items():
            for i, x in enumerate(data):
                if va <= at + i < va + size:
                    b[at + i - va] = x
        return bytes(b)

    return rd


@pytest.fixture(scope="module")
def deep_run(dlls: dict[str, Path]):
    """The no-frame-pointer build stopped in leaf_c (every other function on the stack)."""
    got: dict = {}
    info = describe(dlls["nofp"])

    def on_insn(pc, regs, stack, read) -> None:
        if not got and stack[-1].name == "leaf_c":
            got["regs"] = dict(regs)
            got["stack"] = bytes(read(regs["sp"], STACK_LOW + STACK_SIZE - regs["sp"]))
            got["image"] = bytes(read(info.image_base, info.size_of_image))

    trace(dlls["nofp"], "arm64", "top_a", on_insn)
    base, sp = info.image_base, got["regs"]["sp"]

    def read(va: int, size: int) -> bytes | None:
        for start, blob in ((base, got["image"]), (sp, got["stack"])):
            if start <= va and va + size <= start + len(blob):
                return blob[va - start : va - start + size]
        return None

    return info, got["regs"], read


def _walk(info, regs, read, **kw):
    mods = [Module("prologs.dll", info.image_base, info.size_of_image)]
    return unwind("arm64", regs, read, mods, image_for=lambda m: PeImage.from_memory(read, m.base), **kw)


def _pdata(info, read) -> tuple[int, int]:
    img = PeImage.from_memory(read, info.image_base)
    d = img.directory(3)
    return d.rva, d.size


def test_xdata_outside_the_image(deep_run) -> None:
    info, regs, read = deep_run
    rva, size = _pdata(info, read)
    patches = {}
    for k in range(size // 8):
        word = int.from_bytes(read(info.image_base + rva + 8 * k + 4, 4), "little")
        if word & 3 == 0:  # an .xdata RVA: send it far outside the image
            patches[info.image_base + rva + 8 * k + 4] = (0x7FFFFFF0).to_bytes(4, "little")
    assert patches
    bad = _overlay(read, patches)
    walk = _walk(info, regs, bad, allow_scan=False)
    assert len(walk.frames) < 10
    assert any("outside the image" in w or "unreadable" in w for w in walk.warnings), walk.warnings
    walk = _walk(info, regs, bad)  # the scan carries on, labelled as such
    assert len(walk.frames) > 2
    assert "scan" in {f.trust for f in walk.frames}


@pytest.mark.parametrize("garbage", [b"\xff" * 8, b"\xe6\xe6\xe1\xe4", b"\xe7\x00\x00", b"\xdf\x00\xe4\x00"])
def test_garbage_unwind_codes(deep_run, garbage: bytes) -> None:
    """Reserved codes, save_next before a non-pair, save_any_reg and SVE alloc_z (not supported)."""
    info, regs, read = deep_run
    rva, size = _pdata(info, read)
    patches = {}
    for k in range(size // 8):
        word = int.from_bytes(read(info.image_base + rva + 8 * k + 4, 4), "little")
        if word & 3 == 0:
            hdr = int.from_bytes(read(info.image_base + word, 4), "little")
            scopes = 0 if hdr & (1 << 21) else (hdr >> 22) & 0x1F
            patches[info.image_base + word + 4 + 4 * scopes] = garbage
    walk = _walk(info, regs, _overlay(read, patches), allow_scan=False)
    assert len(walk.frames) < 10
    assert any("arm64:" in w for w in walk.warnings), walk.warnings


def test_huge_claimed_exception_directory(deep_run) -> None:
    info, regs, read = deep_run
    raw = read(info.image_base, 0x400)
    lfanew = int.from_bytes(raw[0x3C:0x40], "little")
    reads: list[int] = []
    bad = _overlay(read, {info.image_base + lfanew + 24 + 0x70 + 3 * 8 + 4: (0x4000_0000).to_bytes(4, "little")})

    def counting(va: int, size: int):
        reads.append(size)
        return bad(va, size)

    walk = _walk(info, regs, counting, allow_scan=False)
    assert sum(reads) < 4 << 20
    assert any("past the image end" in w for w in walk.warnings), walk.warnings
    assert len(walk.frames) == len(PROLOGS_CHAIN)  # the real entries still unwind every frame
    assert {f.trust for f in walk.frames[1:]} == {"cfi"}


def test_machine_frame_that_loops(custom_dll: Path) -> None:
    """A machine frame whose saved {sp, pc} lead back to a state already walked ends the walk with a warning."""
    run = run_until_break(custom_dll, "arm64", "mf_top")
    mods = [Module("custom.dll", run.info.image_base, run.info.size_of_image)]
    src = lambda m: PeImage.from_memory(run.read, m.base)  # noqa: E731
    good = unwind("arm64", run.regs, run.read, mods, image_for=src, allow_scan=False)
    handler = good.frames[1]
    machine_frame = handler.sp + 16  # above the handler's own stp x29, x30, [sp, #-16]!
    patch = handler.sp.to_bytes(8, "little") + handler.pc.to_bytes(8, "little")
    read = _overlay(run.read, {machine_frame: patch})
    walk = unwind("arm64", run.regs, read, mods, image_for=src, allow_scan=False)
    assert len(walk.frames) <= 3
    assert any("loops" in w for w in walk.warnings), walk.warnings


def test_xdata_claiming_65535_epilog_scopes(deep_run) -> None:
    """Every .xdata header rewritten to use the extension word with the largest counts: bounded work."""
    import time

    info, regs, read = deep_run
    rva, size = _pdata(info, read)
    patches = {}
    for k in range(size // 8):
        word = int.from_bytes(read(info.image_base + rva + 8 * k + 4, 4), "little")
        if word & 3 == 0:
            flen = int.from_bytes(read(info.image_base + word, 4), "little") & 0x3FFFF
            patches[info.image_base + word] = flen.to_bytes(4, "little") + (0xFFFF | 255 << 16).to_bytes(4, "little")
    reads: list[int] = []
    bad = _overlay(read, patches)

    def counting(va: int, n: int):
        reads.append(n)
        return bad(va, n)

    t0 = time.perf_counter()
    walk = _walk(info, regs, counting)
    assert time.perf_counter() - t0 < 5  # generous: the point is "bounded"; figures in benchmarks/
    assert sum(reads) < 16 << 20
    assert any("arm64:" in w for w in walk.warnings), walk.warnings
