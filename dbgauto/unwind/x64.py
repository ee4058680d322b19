"""x64 virtual unwind from RUNTIME_FUNCTION / UNWIND_INFO (Microsoft, "x64 exception handling").

One step takes the integer registers at a frame and undoes the function's prolog by interpreting its unwind
codes in order: PUSH_NONVOL, ALLOC_LARGE/SMALL, SET_FPREG, SAVE_NONVOL(_FAR), SAVE_XMM128(_FAR) (skipped: no
integer state), EPILOG (v2 marker, no effect), PUSH_MACHFRAME (the interrupted RIP/RSP come from the machine
frame), then follows chained unwind info. Inside a prolog only the codes whose offset has been reached are
applied. A PC without a RUNTIME_FUNCTION in an image that has .pdata is a leaf: the return address is at RSP.
Every read is checked and every loop bounded; failures return None with a reason.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from dbgauto.pe import PeImage, RuntimeFunction
from dbgauto.unwind.model import Memory

REGS: Final = (
    "rax",
    "rcx",
    "rdx",
    "rbx",
    "rsp",
    "rbp",
    "rsi",
    "rdi",
    "r8",
    "r9",
    "r10",
    "r11",
    "r12",
    "r13",
    "r14",
    "r15",
)
UNW_FLAG_CHAININFO: Final = 0x4
MAX_CHAIN: Final = 32
_Q = struct.Struct("<Q")
_H = struct.Struct("<H")
_I = struct.Struct("<I")

PUSH_NONVOL, ALLOC_LARGE, ALLOC_SMALL, SET_FPREG, SAVE_NONVOL, SAVE_NONVOL_FAR = 0, 1, 2, 3, 4, 5
EPILOG_OR_SAVE_XMM, SPARE_OR_SAVE_XMM_FAR, SAVE_XMM128, SAVE_XMM128_FAR, PUSH_MACHFRAME = 6, 7, 8, 9, 10
_SLOTS: Final = {
    ALLOC_LARGE: None,
    SAVE_NONVOL: 2,
    SAVE_NONVOL_FAR: 3,
    EPILOG_OR_SAVE_XMM: 2,
    SPARE_OR_SAVE_XMM_FAR: 3,
    SAVE_XMM128: 2,
    SAVE_XMM128_FAR: 3,
}


@dataclass(slots=True)
class StepResult:
    regs: list[int]
    rip: int
    machine_frame: bool
    frame_at: int | None = None  # the machine frame's address (its saved RIP) when one was crossed


def _q(read: Memory, va: int) -> int | None:
    b = read(va, 8)
    if b is None or len(b) < 8:
        return None
    return _Q.unpack_from(b)[0]


def regs_from_mapping(m: dict[str, int] | object) -> list[int]:
    get = m.get if hasattr(m, "get") else (lambda k, d=0: d)  # type: ignore[union-attr]
    return [int(get(r, 0) or 0) for r in REGS]


def step(
    img: PeImage, fn: RuntimeFunction, rip: int, regs: list[int], read: Memory, *, innermost: bool
) -> tuple[StepResult | None, str]:
    """Undo ``fn``'s prolog at ``rip`` (an absolute address inside ``img``); return the caller's state."""
    regs = list(regs)
    rva = rip - img.base
    if innermost:
        epi = _epilog(img, rva, regs, read)
        if epi is not None:
            return epi, ""
    fn_rva = fn.unwind_rva
    first = True
    machine = False
    for _ in range(MAX_CHAIN):
        if fn_rva is None:
            return None, "no unwind info"
        hdr = img.read_rva(fn_rva, 4)
        if hdr is None:
            return None, f"UNWIND_INFO at rva {fn_rva:#x} is outside the image or unreadable"
        b0, prolog_size, count, fr = hdr[0], hdr[1], hdr[2], hdr[3]
        version, flags = b0 & 7, b0 >> 3
        if version not in (1, 2):
            return None, f"UNWIND_INFO version {version} at rva {fn_rva:#x}"
        codes = img.read_rva(fn_rva + 4, 2 * count) if count else b""
        if codes is None:
            return None, f"unwind codes at rva {fn_rva + 4:#x} are unreadable"
        frame_reg, frame_off = fr & 0xF, (fr >> 4) * 16
        # In the primary function's prolog only the codes already executed apply; chained parents apply fully.
        in_prolog_offset = rva - fn.begin if first and rva - fn.begin < prolog_size else None
        i = 0
        while i < count:
            code_off, opb = codes[2 * i], codes[2 * i + 1]
            op, info = opb & 0xF, opb >> 4
            slots = _SLOTS.get(op, 1)
            if op == ALLOC_LARGE:
                slots = 2 if info == 0 else 3
            if i + slots > count:
                return None, f"unwind code {op} at rva {fn_rva:#x} runs past the code array"
            skip = in_prolog_offset is not None and code_off > in_prolog_offset and op != EPILOG_OR_SAVE_XMM
            if version == 2 and op == EPILOG_OR_SAVE_XMM:
                skip = True
            if not skip:
                rsp = regs[4]
                if op == PUSH_NONVOL:
                    v = _q(read, rsp)
                    if v is None:
                        return None, f"stack at {rsp:#x} unreadable"
                    regs[info] = v
                    regs[4] = rsp + 8
                elif op == ALLOC_LARGE:
                    if info == 0:
                        regs[4] = rsp + _H.unpack_from(codes, 2 * i + 2)[0] * 8
                    else:
                        regs[4] = rsp + _I.unpack_from(codes, 2 * i + 2)[0]
                elif op == ALLOC_SMALL:
                    regs[4] = rsp + info * 8 + 8
                elif op == SET_FPREG:
                    regs[4] = regs[frame_reg] - frame_off
                elif op in (SAVE_NONVOL, SAVE_NONVOL_FAR):
                    off = (
                        _H.unpack_from(codes, 2 * i + 2)[0] * 8
                        if op == SAVE_NONVOL
                        else _I.unpack_from(codes, 2 * i + 2)[0]
                    )
                    v = _q(read, rsp + off)
                    if v is None:
                        return None, f"saved register at {rsp + off:#x} unreadable"
                    regs[info] = v
                elif op == PUSH_MACHFRAME:
                    base = rsp + (8 if info else 0)
                    new_rip, new_rsp = _q(read, base), _q(read, base + 24)
                    if new_rip is None or new_rsp is None:
                        return None, f"machine frame at {base:#x} unreadable"
                    regs[4] = new_rsp
                    machine = True
                    return StepResult(regs, new_rip, True, base), ""
                # SAVE_XMM128(_FAR), v1 SAVE_XMM(_FAR): vector registers only, nothing to restore here
            i += slots
        if not flags & UNW_FLAG_CHAININFO:
            break
        chain_at = fn_rva + 4 + 2 * ((count + 1) & ~1)
        raw = img.read_rva(chain_at, 12)
        if raw is None:
            return None, f"chained RUNTIME_FUNCTION at rva {chain_at:#x} unreadable"
        b, e, u = struct.unpack_from("<III", raw)
        fn = RuntimeFunction(b, e, u)
        fn_rva = u
        first = False
    else:
        return None, f"chained unwind info deeper than {MAX_CHAIN}"
    ret = _q(read, regs[4])
    if ret is None:
        return None, f"return address at {regs[4]:#x} unreadable"
    regs[4] += 8
    return StepResult(regs, ret, machine), ""


def leaf_step(rip: int, regs: list[int], read: Memory) -> StepResult | None:
    """A leaf function (no RUNTIME_FUNCTION): it has not touched RSP, the return address is at [RSP]."""
    ret = _q(read, regs[4])
    if ret is None:
        return None
    regs = list(regs)
    regs[4] += 8
    return StepResult(regs, ret, False)


def _epilog(img: PeImage, rva: int, regs: list[int], read: Memory) -> StepResult | None:
    """When the innermost PC sits on ``pop reg``* ``ret`` (an epilog after the stack was released), emulate it."""
    code = img.read_rva(rva, 32)
    if code is None:
        return None
    code = bytes(code)
    regs = list(regs)
    i = 0
    pops = []
    while i < len(code):
        b = code[i]
        if 0x58 <= b <= 0x5F:
            pops.append(b - 0x58)
            i += 1
        elif b in (0x41, 0x49) and i + 1 < len(code) and 0x58 <= code[i + 1] <= 0x5F:  # REX.B pop r8..r15
            pops.append(8 + code[i + 1] - 0x58)
            i += 2
        elif b == 0xC3:
            break
        else:
            return None
    else:
        return None
    for r in pops:
        v = _q(read, regs[4])
        if v is None:
            return None
        regs[r] = v
        regs[4] += 8
    ret = _q(read, regs[4])
    if ret is None:
        return None
    regs[4] += 8
    return StepResult(regs, ret, False)
