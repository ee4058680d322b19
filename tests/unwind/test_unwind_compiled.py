"""Unwinding real compiled code: clang/lld build the images, unicorn executes them up to a breakpoint in the
innermost function, and the unwinder must recover the exact call chain from that register state and stack.

Expectations come from the C/assembly source (the call chain), llvm-readobj (function starts = exports) and
the emulator (the stack pointer at each function's entry), never from dbgauto.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dbgauto_testkit.winbuild import CHAIN, CHAIN_C, TRAP_CHAIN, TRAP_S, Run, build, function_of, run_until_break

from dbgauto.pe import PeImage
from dbgauto.unwind import Frame, Module, unwind

WS = {"x64": 8, "x86": 4, "arm64": 8}


@pytest.fixture(scope="module")
def chain_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    out = {}
    for arch in ("x64", "arm64", "x86"):
        # ARM64 and x86 Windows code keeps frame pointers; clang needs to be told so.
        flags = ("-fno-omit-frame-pointer",) if arch != "x64" else ()
        dll = build(tmp_path_factory.mktemp(f"chain_{arch}"), "chain", arch, c_source=CHAIN_C, cflags=flags)
        out[arch] = run_until_break(dll, arch, "top_a")
    return out


def _walk(run: Run, name: str, **kw):
    mods = [Module(name, run.info.image_base, run.info.size_of_image)]
    return unwind(
        run.arch, run.regs, run.read, mods, image_for=lambda m: PeImage.from_memory(run.read, m.base, name=m.name), **kw
    )


def _names(run: Run, frames: list[Frame]) -> list[str | None]:
    return [function_of(run.info, f.offset) if f.offset is not None else None for f in frames]


@pytest.mark.parametrize("arch", ["x64", "arm64", "x86"])
def test_exact_call_chain(chain_runs: dict[str, Run], arch: str) -> None:
    run = chain_runs[arch]
    walk = _walk(run, "chain.dll", allow_scan=False)
    assert _names(run, walk.frames) == CHAIN, walk
    assert walk.warnings == []
    assert walk.frames[0].trust == "context"
    assert walk.frames[0].pc == run.regs["rip" if arch == "x64" else "eip" if arch == "x86" else "pc"]
    assert all(f.module == "chain.dll" for f in walk.frames)
    assert [f.offset for f in walk.frames] == [f.pc - run.info.image_base for f in walk.frames]
    if arch == "x64":
        assert [f.trust for f in walk.frames[1:]] == ["cfi"] * 3
    elif arch == "x86":
        assert [f.trust for f in walk.frames[1:]] == ["frame-pointer"] * 3
    else:  # the image's .pdata/.xdata (tests/unwind/test_unwind_arm64_pdata.py covers the forms)
        assert [f.trust for f in walk.frames[1:]] == ["cfi"] * 3
    # the caller's stack pointer after the return = the callee's entry stack pointer (+ the return address)
    for f, callee in zip(walk.frames[1:], CHAIN, strict=False):
        assert f.sp == run.entry_sp[callee] + (WS[arch] if arch != "arm64" else 0), (f, callee)


@pytest.mark.parametrize("arch", ["x64", "arm64", "x86"])
def test_scan_alone_finds_only_return_addresses(chain_runs: dict[str, Run], arch: str) -> None:
    """With the unwind data and frame pointers out of the way, the filtered scan still names the callers in
    order and reports nothing that is not a return address into code."""
    run = chain_runs[arch]
    regs = dict(run.regs)
    for k in ("rbp", "ebp", "fp", "lr"):
        regs.pop(k, None)
    mods = [Module("chain.dll", run.info.image_base, run.info.size_of_image)]
    img = PeImage.from_memory(run.read, run.info.image_base)
    # an image without unwind data: only the section table and code bytes are available to the walker
    walk = unwind(arch, regs, run.read, mods, image_for=lambda m: _NoPdata(img))
    names = _names(run, walk.frames)
    assert names[0] == "leaf_c"
    scanned = [n for f, n in zip(walk.frames, names, strict=True) if f.trust == "scan"]
    assert scanned
    assert set(scanned) <= set(CHAIN[1:])
    assert [n for n in CHAIN[1:] if n in scanned] == sorted(set(scanned), key=CHAIN.index)


def test_scan_never_reports_excluded_values(chain_runs: dict[str, Run]) -> None:
    run = chain_runs["x64"]
    regs = {"rip": run.regs["rip"], "rsp": run.regs["rsp"]}
    img = PeImage.from_memory(run.read, run.info.image_base)
    mods = [Module("chain.dll", run.info.image_base, run.info.size_of_image)]
    first = unwind("x64", regs, run.read, mods, image_for=lambda m: _NoPdata(img))
    scanned = {f.pc for f in first.frames if f.trust == "scan"}
    assert scanned
    again = unwind("x64", regs, run.read, mods, image_for=lambda m: _NoPdata(img), exclude=scanned)
    assert not {f.pc for f in again.frames[1:]} & scanned


class _NoPdata:
    """The same image with its exception directory hidden (as when only headers were resident)."""

    def __init__(self, img: PeImage) -> None:
        self._img = img

    def __getattr__(self, name: str):
        return getattr(self._img, name)

    def exception_table(self):
        return None


def test_x64_machine_frame_chained_info_and_rare_codes(tmp_path: Path) -> None:
    """PUSH_MACHFRAME (with error code), ALLOC_LARGE both forms, SET_FPREG with an offset, SAVE_NONVOL,
    SAVE_XMM128, a chained fragment and a leaf without unwind data, all from real assembler output."""
    exports = ("/export:top2", "/export:interrupted", "/export:isr", "/export:leaf2")
    dll = build(tmp_path, "trap", "x64", asm=TRAP_S, link=("/dll", "/noentry", *exports))
    run = run_until_break(dll, "x64", "top2")
    walk = _walk(run, "trap.dll", allow_scan=False)
    assert _names(run, walk.frames) == TRAP_CHAIN, walk
    assert walk.warnings == []
    # the interrupted context: rip = the instruction the "trap" interrupted, rsp = what the machine frame saved
    saved_rip = int.from_bytes(run.read(run.entry_sp["isr"] + 8, 8), "little")  # past the error code
    assert walk.frames[2].pc == saved_rip
    assert walk.frames[2].sp == run.regs["r12"]  # the assembly saved the interrupted rsp in r12
    assert walk.frames[3].sp == run.entry_sp["interrupted"] + 8  # needs rsi restored by SAVE_NONVOL
    assert walk.frames[1].sp == run.entry_sp["leaf2"] + 8


def test_x64_trap_context_callback(tmp_path: Path) -> None:
    """A trap context handed in by the caller (as a _KTRAP_FRAME reader would) continues the walk there."""
    exports = ("/export:top2", "/export:interrupted", "/export:isr", "/export:leaf2")
    dll = build(tmp_path, "trap", "x64", asm=TRAP_S, link=("/dll", "/noentry", *exports))
    run = run_until_break(dll, "x64", "top2")
    isr = run.info.image_base + run.info.exports["isr"]
    machine_frame = run.entry_sp["isr"] + 8  # past the error code
    saved_rip = int.from_bytes(run.read(machine_frame, 8), "little")
    saved_rsp = int.from_bytes(run.read(machine_frame + 24, 8), "little")
    calls = []

    def trap(frame: Frame):
        calls.append(frame.index)
        if frame.pc >= isr and function_of(run.info, frame.offset) == "isr":
            return {"rip": saved_rip, "rsp": saved_rsp, "rsi": run.entry_sp["interrupted"] - 0x98 + 0x20}
        return None

    walk = _walk(run, "trap.dll", allow_scan=False, trap_context=trap)
    assert _names(run, walk.frames) == TRAP_CHAIN
    assert walk.frames[1].trap_frame
    assert walk.frames[2].trust == "context"
    assert walk.frames[2].pc == saved_rip
    assert walk.frames[2].sp == saved_rsp
    assert walk.frames[3].trust == "cfi"
