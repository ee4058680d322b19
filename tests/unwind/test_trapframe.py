"""x64 kernel trap frames: the _KTRAP_FRAME offsets against the ISF tables, and a walk through a trap frame
built by real compiled code (clang/lld, executed in unicorn) into the context it interrupted.

The assembly mirrors a Ki* handler: the "CPU" pushes a machine frame with an error code, the handler allocates
the rest of a _KTRAP_FRAME (so the machine frame sits at Rip's offset 0x168), stores the interrupted Rbp there
*without* an unwind code and points rbp at trap frame + 0x80. Only a walker that reads the trap frame recovers
the interrupted function's rbp, and with it its caller.
"""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest
from dbgauto_testkit.winbuild import Run, build, function_of, run_until_break

from dbgauto.pe import PeImage
from dbgauto.unwind import Module, unwind
from dbgauto.unwind.trapframe import KTRAP_FRAME_X64, KTRAP_FRAME_X64_SIZE, is_trap_handler, layout_from_type

SYMBOLS = Path(__file__).resolve().parents[2] / ".." / "shared" / "symbols" / "ntkrnlmp.pdb"

KTRAP_S = r"""
.intel_syntax noprefix
.text
.globl top3
.def top3; .scl 2; .type 32; .endef
.seh_proc top3
top3:
  push rbx
  .seh_pushreg rbx
  sub rsp, 0x20
  .seh_stackalloc 0x20
  .seh_endprologue
  call victim
  add rsp, 0x20
  pop rbx
  ret
.seh_endproc

.globl victim
.def victim; .scl 2; .type 32; .endef
.seh_proc victim
victim:
  push rbp
  .seh_pushreg rbp
  sub rsp, 0x40
  .seh_stackalloc 0x40
  lea rbp, [rsp + 0x20]
  .seh_setframe rbp, 0x20
  .seh_endprologue
  mov r10, rsp
  push 0x2b
  push r10
  pushfq
  push 0x33
  lea rax, [rip + faulting]
  push rax
  push 0x1234
  jmp kpf
faulting:
  mov rax, [rax]
  lea rsp, [rbp - 0x20]
  add rsp, 0x40
  pop rbp
  ret
.seh_endproc

.globl kpf
.def kpf; .scl 2; .type 32; .endef
.seh_proc kpf
kpf:
  .seh_pushframe @code
  sub rsp, 0x160
  .seh_stackalloc 0x160
  .seh_endprologue
  mov [rsp + 0x158], rbp
  mov [rsp + 0x30], rax
  mov [rsp + 0x38], rcx
  lea rbp, [rsp + 0x80]
  mov rax, 0x7777
  call leaf3
  int3
.seh_endproc

.globl leaf3
.def leaf3; .scl 2; .type 32; .endef
leaf3:
  int3
  ret
"""
CHAIN = ["leaf3", "kpf", "victim", "top3"]


def test_offsets_match_every_isf_table() -> None:
    tables = sorted(SYMBOLS.glob("*.json.xz"))
    if not tables:
        pytest.skip("no ntkrnlmp ISF tables in ../shared/symbols")
    assert len(tables) == 6
    for path in tables:
        with lzma.open(path) as fh:
            t = json.load(fh)["user_types"]["_KTRAP_FRAME"]
        offsets = {name: f["offset"] for name, f in t["fields"].items()}
        assert {k: offsets[k] for k in KTRAP_FRAME_X64} == dict(KTRAP_FRAME_X64), path.name
        assert t["size"] == KTRAP_FRAME_X64_SIZE
        assert layout_from_type(offsets) == dict(KTRAP_FRAME_X64)
    assert layout_from_type({"Rip": 0x170}) == {**KTRAP_FRAME_X64, "Rip": 0x170}  # a table wins
    assert layout_from_type(None) == dict(KTRAP_FRAME_X64)


def test_handler_names() -> None:
    for n in ("KiPageFault", "nt!KiPageFaultShadow", "KiSystemServiceExit", "KiSystemCall64Shadow", "KiBreakpointTrap"):
        assert is_trap_handler(n), n
    for n in (None, "", "KeBugCheckEx", "nt!KiSwapContext", "RtlFoo"):
        assert not is_trap_handler(n), n


@pytest.fixture(scope="module")
def ktrap_dll(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exports = ("/export:top3", "/export:victim", "/export:kpf", "/export:leaf3")
    return build(tmp_path_factory.mktemp("ktrap"), "ktrap", "x64", asm=KTRAP_S, link=("/dll", "/noentry", *exports))


def _walk(run: Run, **kw):
    mods = [Module("ktrap.dll", run.info.image_base, run.info.size_of_image)]
    return unwind(
        "x64",
        run.regs,
        run.read,
        mods,
        image_for=lambda m: PeImage.from_memory(run.read, m.base, name=m.name),
        allow_scan=False,
        **kw,
    )


def _names(run: Run, walk) -> list[str | None]:
    return [function_of(run.info, f.offset) if f.offset is not None else None for f in walk.frames]


def _namer(run: Run, kpf_name: str):
    def name(pc: int) -> str | None:
        fn = function_of(run.info, pc - run.info.image_base)
        return kpf_name if fn == "kpf" else fn

    return name


@pytest.mark.parametrize("kpf_name", [None, "KiPageFault"])
def test_walk_continues_through_the_trap_frame(ktrap_dll: Path, kpf_name: str | None) -> None:
    run = run_until_break(ktrap_dll, "x64", "top3")
    namer = _namer(run, kpf_name) if kpf_name else None
    walk = _walk(run, ktrap_frame=KTRAP_FRAME_X64, function_name=namer)
    assert _names(run, walk) == CHAIN, walk
    assert walk.warnings == []
    machine_frame = run.entry_sp["kpf"] + 8  # past the error code
    trap = machine_frame - 0x168
    assert walk.frames[0].sp == trap - 8
    assert walk.frames[1].trap_frame
    assert not walk.frames[0].trap_frame
    assert walk.frames[2].trust == "context"
    assert walk.frames[2].pc == int.from_bytes(run.read(machine_frame, 8), "little")
    assert walk.frames[2].sp == run.entry_sp["victim"] - 8 - 0x40
    assert walk.frames[3].trust == "cfi"
    assert walk.frames[3].sp == run.entry_sp["victim"] + 8
    assert not any(f.trap_frame for f in walk.frames[2:])


def test_without_the_trap_frame_the_interrupted_rbp_is_lost(ktrap_dll: Path) -> None:
    run = run_until_break(ktrap_dll, "x64", "top3")
    plain = _walk(run)  # machine frame only: rip/rsp right, rbp the handler's
    assert not plain.frames[1].trap_frame
    assert _names(run, plain)[:3] == CHAIN[:3]
    assert _names(run, plain) != CHAIN
    named = _walk(run, ktrap_frame=KTRAP_FRAME_X64, function_name=_namer(run, "NotAHandler"))
    assert not named.frames[1].trap_frame
    assert named.frames[2].trust == "cfi"


def test_trap_frame_outside_the_stack(ktrap_dll: Path) -> None:
    run = run_until_break(ktrap_dll, "x64", "top3")
    sp = run.regs["rsp"]
    walk = _walk(run, ktrap_frame=KTRAP_FRAME_X64, stack_limits=(sp, sp + 0x100))
    assert _names(run, walk) == CHAIN[:2]
    assert any("outside the stack" in w for w in walk.warnings), walk.warnings


def test_looping_and_implausible_trap_frames(ktrap_dll: Path) -> None:
    run = run_until_break(ktrap_dll, "x64", "top3")
    trap = run.entry_sp["kpf"] + 8 - 0x168
    good = _walk(run, ktrap_frame=KTRAP_FRAME_X64)
    # the trap frame names the handler's own frame: a loop, reported and cut
    run.memory.mem_write(trap + 0x168, good.frames[1].pc.to_bytes(8, "little"))
    run.memory.mem_write(trap + 0x180, good.frames[1].sp.to_bytes(8, "little"))
    walk = _walk(run, ktrap_frame=KTRAP_FRAME_X64)
    assert len(walk.frames) == 2
    assert any("loops" in w for w in walk.warnings), walk.warnings
    # a user-mode cs with a kernel-range rip: implausible, not followed
    run.memory.mem_write(trap + 0x168, (0xFFFFF80000001000).to_bytes(8, "little"))
    walk = _walk(run, ktrap_frame=KTRAP_FRAME_X64, max_frames=64)
    assert len(walk.frames) == 2
    assert any("implausible" in w for w in walk.warnings), walk.warnings
    # a rip of zero: not followed, and the scan that takes over stays bounded
    run.memory.mem_write(trap + 0x168, bytes(8))
    mods = [Module("ktrap.dll", run.info.image_base, run.info.size_of_image)]
    image = lambda m: PeImage.from_memory(run.read, m.base, name=m.name)  # noqa: E731
    walk = unwind("x64", run.regs, run.read, mods, image_for=image, ktrap_frame=KTRAP_FRAME_X64, max_frames=8)
    assert len(walk.frames) <= 8
    assert not walk.frames[1].trap_frame
    assert any("implausible" in w for w in walk.warnings), walk.warnings


def test_stack_takes_offsets_from_the_symbol_table() -> None:
    from dbgauto.analysis.stack import _function_namer, _ktrap_layout
    from dbgauto.symbols.table import FieldInfo, TypeInfo

    class Table:
        def type(self, name: str):
            assert name == "_KTRAP_FRAME"
            return TypeInfo("_KTRAP_FRAME", 0x1A0, {"Rip": FieldInfo(0x170, "unsigned __int64")})

        def name(self, address: int):
            return ("nt", "KiPageFault", 0x10) if address == 1 else None

    assert _ktrap_layout(Table()) == {**KTRAP_FRAME_X64, "Rip": 0x170}
    assert _ktrap_layout(None) == dict(KTRAP_FRAME_X64)
    namer = _function_namer(Table())
    assert namer is not None
    assert namer(1) == "KiPageFault"
    assert namer(2) is None
