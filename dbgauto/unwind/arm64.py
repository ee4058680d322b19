"""ARM64 virtual unwind from ``.pdata``/``.xdata`` (Microsoft, "ARM64 exception handling").

Both forms reduce to one list of operations in *unwind order* (the reverse of the prolog), each standing for
exactly one prolog/epilog instruction, which is what makes mid-prolog and mid-epilog unwinding possible:

- ``.xdata`` records: the header (FunctionLength, Vers, X, E, EpilogCount, CodeWords, the extension word),
  the epilog scopes and the unwind-code bytes are decoded (alloc_s/m/l, save_r19r20_x, save_fplr(_x),
  save_regp(_x), save_reg(_x), save_lrpair, save_fregp(_x), save_freg(_x), set_fp, add_fp, nop, end, end_c,
  save_next (accumulated onto the following pair save), pac_sign_lr, MSFT_OP_TRAP_FRAME/MACHINE_FRAME/CONTEXT,
  clear_unwound_to_call). In the prolog the first ``prolog length - executed instructions`` codes are skipped; in
  an epilog (E bit: the single one at the function's end; else the scope list) the executed ones are skipped.
- packed words (Flag 1/2): the canonical prolog is rebuilt from RegI, RegF, CR, H and FrameSize (the doc's
  steps: integer pairs with the first store pre-decrementing the save area, lr, d8.., home area, the local
  allocation with or without the <x29,lr> record); the epilog at the function's end mirrors it without
  ``mov x29, sp``. Flag 2 (a fragment) has neither. The prolog's ``mov x29, sp`` is undone as ``sp = x29``
  (equal in a canonical body; right too when clang 14 packs an alloca function whose sp moved below x29).

After the codes, the caller's pc is the restored lr (a trap/machine frame or CONTEXT gives pc itself).
Registers: a list of 32 — x0..x30 then sp; d8..d15 are returned separately. Every read is checked, every
loop bounded; failures return None with a reason.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from dbgauto.pe import ExceptionTable, PeImage, RuntimeFunction
from dbgauto.unwind.model import Memory

SP: Final = 31
FP: Final = 29
LR: Final = 30
MAX_CODE_BYTES: Final = 1024  # CodeWords is at most 255 words (extension word): 1020 bytes
MAX_SCOPES: Final = 0xFFFF
# Field offsets of the ARM64 _KTRAP_FRAME (Sp, X0.., Lr, Fp, Pc) as the Windows unwinder reads them.
KTRAP_FRAME_ARM64: Final = {"Sp": 0x98, "X": 0xA0, "Lr": 0x138, "Fp": 0x140, "Pc": 0x148}
KTRAP_FRAME_ARM64_SIZE: Final = 0x150
# CONTEXT (ARM64): X0 at 8, Fp 0xF0, Lr 0xF8, Sp 0x100, Pc 0x108, V[] at 0x110 (16 bytes each).
_CTX_X0, _CTX_FP, _CTX_LR, _CTX_SP, _CTX_PC, _CTX_V = 0x08, 0xF0, 0xF8, 0x100, 0x108, 0x110
_Q = struct.Struct("<Q")
_I = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Op:
    """One prolog/epilog instruction's undo. ``saves``: (register, offset from sp) pairs to reload (register
    64+n = d n); ``post``: bytes added to sp after the reloads (pre-indexed stores and allocations);
    ``special``: 'set_fp' / 'add_fp' (sp = fp - arg), 'next' (save_next), 'trap' / 'machine' / 'context',
    'end', 'end_c'. A pair save has ``arg`` = its first register, so preceding save_next ops can extend it."""

    saves: tuple[tuple[int, int], ...] = ()
    post: int = 0
    special: str = ""
    arg: int = 0


NOP: Final = Op()
END: Final = Op(special="end")


@dataclass(slots=True)
class StepResult:
    regs: list[int]
    pc: int
    dregs: dict[int, int] = field(default_factory=dict)
    exact: bool = False  # pc is an interrupted instruction (trap/machine frame, CONTEXT), not a return address
    where: str = "body"  # 'prolog' / 'epilog' / 'body'
    lr_restored: bool = True  # False: the return address is the live lr register (nothing saved it)


class UnwindError(ValueError):
    """Malformed unwind data (the reason goes into a walker warning)."""


# ---- decoding ------------------------------------------------------------------------------------------------
_SIZE_E0: Final = (4, 1, 2, 1, 1, 1, 1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 1, 1, 1, 1)


def code_size(b: int) -> int:
    """Byte length of the unwind code starting with byte ``b`` (the first byte decides it)."""
    if b < 0xC0:
        return 1
    if b < 0xE0:
        return 2
    return _SIZE_E0[b - 0xE0]


def decode(codes: bytes | memoryview, start: int = 0) -> list[Op]:
    """Ops from byte ``start`` up to and including ``end`` (``end_c`` is kept as a marker). A save_next stays
    an op of its own (it is one instruction); :func:`run` folds it into the pair save that follows it, as the
    Windows unwinder accumulates them."""
    out: list[Op] = []
    i = start
    n = len(codes)
    while i < n and len(out) <= MAX_CODE_BYTES:
        b = codes[i]
        size = code_size(b)
        if i + size > n:
            raise UnwindError(f"unwind code {b:#04x} at byte {i} runs past the code array")
        b1 = codes[i + 1] if size > 1 else 0
        op = _op(b, b1, codes, i)
        i += size
        out.append(op)
        if op.special == "end":
            return out
    raise UnwindError("unwind codes have no end")


def _pair(first: int, off: int) -> tuple[tuple[int, int], ...]:
    return ((first, off), (first + 1, off + 8))


def _op(b: int, b1: int, codes: bytes | memoryview, at: int) -> Op:
    if b < 0x20:  # alloc_s
        return Op(post=16 * b)
    if b < 0x40:  # save_r19r20_x: [sp - Z*8]!
        return Op(_pair(19, 0), post=8 * (b & 0x1F), arg=19)
    if b < 0x80:  # save_fplr: [sp + Z*8]
        return Op(((FP, 8 * (b & 0x3F)), (LR, 8 * (b & 0x3F) + 8)))
    if b < 0xC0:  # save_fplr_x: [sp - (Z+1)*8]!
        return Op(((FP, 0), (LR, 8)), post=8 * ((b & 0x3F) + 1))
    if b < 0xC8:  # alloc_m
        return Op(post=16 * (((b & 7) << 8) | b1))
    x2 = ((b & 3) << 2) | (b1 >> 6)
    z6 = b1 & 0x3F
    if b < 0xCC:  # save_regp
        return Op(_pair(19 + x2, 8 * z6), arg=19 + x2)
    if b < 0xD0:  # save_regp_x
        return Op(_pair(19 + x2, 0), post=8 * (z6 + 1), arg=19 + x2)
    if b < 0xD4:  # save_reg
        return Op(((19 + x2, 8 * z6),))
    if b < 0xD6:  # save_reg_x: 1101010x'xxxzzzzz
        return Op(((19 + (((b & 1) << 3) | (b1 >> 5)), 0),), post=8 * ((b1 & 0x1F) + 1))
    x1 = ((b & 1) << 2) | (b1 >> 6)
    if b < 0xD8:  # save_lrpair: <x(19+2X), lr> at [sp + Z*8]
        return Op(((19 + 2 * x1, 8 * z6), (LR, 8 * z6 + 8)))
    if b < 0xDA:  # save_fregp: d(8+X) pair
        return Op(_pair(64 + 8 + x1, 8 * z6), arg=64 + 8 + x1)
    if b < 0xDC:  # save_fregp_x
        return Op(_pair(64 + 8 + x1, 0), post=8 * (z6 + 1), arg=64 + 8 + x1)
    if b < 0xDE:  # save_freg
        return Op(((64 + 8 + x1, 8 * z6),))
    if b == 0xDE:  # save_freg_x: 11011110'xxxzzzzz
        return Op(((64 + 8 + (b1 >> 5), 0),), post=8 * ((b1 & 0x1F) + 1))
    if b == 0xE0:  # alloc_l
        return Op(post=16 * ((codes[at + 1] << 16) | (codes[at + 2] << 8) | codes[at + 3]))
    if b == 0xE1:
        return Op(special="set_fp")
    if b == 0xE2:
        return Op(special="add_fp", arg=8 * b1)
    if b in (0xE3, 0xEC, 0xFC):  # nop, clear_unwound_to_call, pac_sign_lr: no register state to undo here
        return NOP
    if b == 0xE4:
        return END
    if b == 0xE5:
        return Op(special="end_c")
    if b == 0xE6:
        return Op(special="next")
    if b == 0xE8:
        return Op(special="trap")
    if b == 0xE9:
        return Op(special="machine")
    if b == 0xEA:
        return Op(special="context")
    raise UnwindError(f"unsupported or reserved unwind code {b:#04x}")


def packed_ops(word: int) -> tuple[list[Op], list[Op]]:
    """(prolog ops, epilog ops), both in unwind order and ending with END, for a packed .pdata word."""
    reg_f, reg_i = (word >> 13) & 7, (word >> 16) & 0xF
    h, cr, frame = (word >> 20) & 1, (word >> 21) & 3, 16 * ((word >> 23) & 0x1FF)
    if word & 3 == 3:
        raise UnwindError("packed unwind data with the reserved Flag 3")
    intsz = 8 * reg_i + (8 if cr == 1 else 0)
    fpsz = 8 * (reg_f + 1) if reg_f else 0
    savsz = (intsz + fpsz + 64 * h + 15) & ~15
    locsz = frame - savsz
    if locsz < 0:
        raise UnwindError(f"packed FrameSize {frame} is smaller than its register save area {savsz}")
    saves: list[tuple[tuple[int, int], ...]] = []
    ints = [19 + k for k in range(reg_i)] + ([LR] if cr == 1 else [])
    saves += [tuple((r, 8 * (k + j)) for j, r in enumerate(ints[k : k + 2])) for k in range(0, len(ints), 2)]
    fps = [64 + 8 + k for k in range(reg_f + 1 if reg_f else 0)]
    saves += [tuple((r, intsz + 8 * (k + j)) for j, r in enumerate(fps[k : k + 2])) for k in range(0, len(fps), 2)]
    execd: list[Op] = []
    for k, s in enumerate(saves):
        execd.append(Op(s, post=savsz if k == 0 else 0))
    homes = [Op(post=savsz if not saves and k == 0 else 0) for k in range(4 * h)]
    allocs: list[Op] = []
    rest = locsz
    if cr in (2, 3) and locsz <= 512:
        allocs += [Op(((FP, 0), (LR, 8)), post=locsz), Op(special="set_fp")]
        rest = 0
    elif rest > 4088:
        allocs += [Op(post=4088), Op(post=rest - 4088)]
    elif rest > 0:
        allocs.append(Op(post=rest))
    if cr in (2, 3) and locsz > 512:
        allocs += [Op(((FP, 0), (LR, 8))), Op(special="set_fp")]
    prolog_exec = ([NOP] if cr == 2 else []) + execd + homes + allocs
    prolog = [*reversed(prolog_exec), END]
    epi_homes = [Op(post=sum(o.post for o in homes))] if homes else []
    epilog_exec = ([NOP] if cr == 2 else []) + execd + epi_homes + [o for o in allocs if o.special != "set_fp"]
    epilog = [*reversed(epilog_exec), END]
    return prolog, epilog


@dataclass(slots=True)
class _Plan:
    ops: list[Op]
    where: str


def plan(img: PeImage, fn: RuntimeFunction, pc: int, *, exact: bool) -> _Plan:
    """Which ops to run for ``pc`` in ``fn``: the prolog's executed part, an epilog's remaining part, or all."""
    off = (pc - img.base - fn.begin) // 4
    if fn.packed is not None:
        flag = fn.packed & 3
        prolog, epilog = packed_ops(fn.packed)
        if flag == 2:
            return _Plan(prolog, "body")
        flen = (fn.packed >> 2) & 0x7FF
        plen = len(prolog) - 1
        if off < plen:
            return _Plan(prolog[plen - off :], "prolog")
        elen = len(epilog)  # the codes plus the final ret
        if exact and flen - elen <= off < flen:
            return _Plan(epilog[off - (flen - elen) :], "epilog")
        return _Plan(prolog, "body")
    return _xdata_plan(img, fn, off, exact)


def _xdata_plan(img: PeImage, fn: RuntimeFunction, off: int, exact: bool) -> _Plan:
    at = fn.unwind_rva
    hdr = img.read_rva(at, 8) if at is not None else None
    if hdr is None:
        hdr4 = img.read_rva(at, 4) if at is not None else None
        if hdr4 is None:
            raise UnwindError(f".xdata at rva {at:#x} is outside the image or unreadable" if at else "no .xdata")
        hdr = bytes(hdr4) + b"\0\0\0\0"
    w0, w1 = struct.unpack_from("<II", hdr)
    flen = w0 & 0x3FFFF
    if (w0 >> 18) & 3:
        raise UnwindError(f".xdata version {(w0 >> 18) & 3} at rva {at:#x}")
    e_bit = bool(w0 & (1 << 21))
    epi_count, words = (w0 >> 22) & 0x1F, (w0 >> 27) & 0x1F
    pos = at + 4
    if epi_count == 0 and words == 0:
        epi_count, words = w1 & 0xFFFF, (w1 >> 16) & 0xFF
        pos += 4
    scopes: list[tuple[int, int]] = []
    if e_bit:
        single_index = epi_count
    else:
        single_index = -1
        if epi_count:
            raw = img.read_rva(pos, 4 * epi_count)
            if raw is None:
                raise UnwindError(f"{epi_count} epilog scopes at rva {pos:#x} are unreadable")
            for k in range(epi_count):
                s = _I.unpack_from(raw, 4 * k)[0]
                scopes.append((s & 0x3FFFF, s >> 22))
        pos += 4 * epi_count
    codes = img.read_rva(pos, 4 * words) if words else b""
    if codes is None:
        raise UnwindError(f"{4 * words} bytes of unwind codes at rva {pos:#x} are unreadable")
    codes = bytes(codes)
    prolog = decode(codes, 0)
    plen = _scope_len(prolog)
    if off < plen:
        return _Plan(_skip(prolog, plen - off), "prolog")
    if exact:
        if e_bit:
            epi = decode(codes, _index(single_index, codes))
            start = flen - (_scope_len(epi) + 1)
            if start <= off < flen:
                return _Plan(_skip(epi, off - start), "epilog")
        else:
            lengths: dict[int, tuple[list[Op], int]] = {}  # at most one decode per start index (≤ 1020)
            for start, index in scopes:
                if off < start:
                    break
                if index not in lengths:
                    epi = decode(codes, _index(index, codes))
                    lengths[index] = (epi, _scope_len(epi) + 1)
                epi, n = lengths[index]
                if off < start + n:
                    return _Plan(_skip(epi, off - start), "epilog")
    return _Plan(prolog, "body")


def _index(i: int, codes: bytes) -> int:
    if not 0 <= i < len(codes):
        raise UnwindError(f"epilog start index {i} is outside the {len(codes)}-byte code array")
    return i


def _scope_len(ops: list[Op]) -> int:
    """Instructions in a scope: ops before the first end/end_c."""
    n = 0
    for o in ops:
        if o.special in ("end", "end_c"):
            break
        n += 1
    return n


def _skip(ops: list[Op], n: int) -> list[Op]:
    k = 0
    while k < n and k < len(ops) and ops[k].special not in ("end", "end_c"):
        k += 1
    return ops[k:]


# ---- execution -----------------------------------------------------------------------------------------------
def _q(read: Memory, va: int) -> int | None:
    b = read(va, 8)
    if b is None or len(b) < 8:
        return None
    return _Q.unpack_from(b)[0]


def run(ops: list[Op], regs: list[int], read: Memory) -> tuple[StepResult | None, str]:
    """Undo ``ops`` on a copy of ``regs``; the caller's state, or None and why."""
    regs = list(regs)
    dregs: dict[int, int] = {}
    lr_restored = False
    pending = 0  # save_next ops waiting for the pair save they extend
    for op in ops:
        sp = regs[SP]
        if op.special == "next":
            pending += 1
            continue
        saves = op.saves
        if pending:
            if not op.arg:
                return None, "save_next is not followed by a register-pair save"
            last = op.saves[-1]
            saves = saves + tuple((op.arg + 2 + k, last[1] + 8 + 8 * k) for k in range(2 * pending))
            if any(r > 28 if op.arg < 64 else r > 64 + 15 for r, _ in saves):
                return None, "save_next runs past the last callee-saved register"
            pending = 0
        if op.special in ("end", "end_c"):
            if op.special == "end":
                break
            continue
        if op.special == "set_fp":
            regs[SP] = regs[FP]
            continue
        if op.special == "add_fp":
            regs[SP] = (regs[FP] - op.arg) & (2**64 - 1)
            continue
        if op.special in ("trap", "machine", "context"):
            return _custom(op.special, regs, dregs, read)
        for reg, off in saves:
            v = _q(read, sp + off)
            if v is None:
                return None, f"saved register at {sp + off:#x} unreadable"
            if reg >= 64:
                dregs[reg - 64] = v
            else:
                regs[reg] = v
                lr_restored = lr_restored or reg == LR
        regs[SP] = sp + op.post
    return StepResult(regs, regs[LR], dregs, lr_restored=lr_restored), ""


def _custom(kind: str, regs: list[int], dregs: dict[int, int], read: Memory) -> tuple[StepResult | None, str]:
    sp = regs[SP]
    if kind == "machine":  # {sp, pc} at the stack pointer
        new_sp, pc = _q(read, sp), _q(read, sp + 8)
        if new_sp is None or pc is None:
            return None, f"machine frame at {sp:#x} unreadable"
        regs[SP] = new_sp
        return StepResult(regs, pc, dregs, exact=True), ""
    if kind == "trap":
        t = KTRAP_FRAME_ARM64
        raw = read(sp, KTRAP_FRAME_ARM64_SIZE)
        if raw is None:
            return None, f"trap frame at {sp:#x} unreadable"
        for k in range(18):
            regs[k] = _Q.unpack_from(raw, t["X"] + 8 * k)[0]
        regs[FP], regs[LR] = _Q.unpack_from(raw, t["Fp"])[0], _Q.unpack_from(raw, t["Lr"])[0]
        regs[SP] = _Q.unpack_from(raw, t["Sp"])[0]
        return StepResult(regs, _Q.unpack_from(raw, t["Pc"])[0], dregs, exact=True), ""
    raw = read(sp, _CTX_V + 16 * 32)
    if raw is None:
        return None, f"CONTEXT at {sp:#x} unreadable"
    for k in range(29):
        regs[k] = _Q.unpack_from(raw, _CTX_X0 + 8 * k)[0]
    regs[FP], regs[LR], regs[SP] = (_Q.unpack_from(raw, o)[0] for o in (_CTX_FP, _CTX_LR, _CTX_SP))
    for d in range(8, 16):
        dregs[d] = _Q.unpack_from(raw, _CTX_V + 16 * d)[0]
    return StepResult(regs, _Q.unpack_from(raw, _CTX_PC)[0], dregs, exact=True), ""


def step(
    img: PeImage, fn: RuntimeFunction, pc: int, regs: list[int], read: Memory, *, exact: bool
) -> tuple[StepResult | None, str]:
    """Undo ``fn``'s prolog (or finish its epilog when ``exact``) at ``pc``; the caller's state, or None and why."""
    try:
        p = plan(img, fn, pc, exact=exact)
    except UnwindError as e:
        return None, str(e)
    res, why = run(p.ops, regs, read)
    if res is not None:
        res.where = p.where
        res.pc = strip_pac(res.pc)
    return res, why


def lookup(tab: ExceptionTable, rva: int) -> RuntimeFunction | None:
    """The entry holding ``rva``; also an entry whose .xdata is unreadable (its length unknown) when it is the
    last one starting at or below ``rva`` — :func:`step` then says why, instead of a silent "leaf"."""
    fn = tab.lookup(rva)
    if fn is not None:
        return fn
    lo, hi, best = 0, tab.count - 1, None
    for _ in range(64):
        if lo > hi:
            break
        mid = (lo + hi) // 2
        e = tab.entry(mid)
        if e is None or e.begin == 0 or rva < e.begin:
            hi = mid - 1
        else:
            best, lo = e, mid + 1
    return best if best is not None and best.end is None else None


def leaf_step(regs: list[int]) -> StepResult:
    """A function without a RUNTIME_FUNCTION has not touched sp or lr: the caller is at lr."""
    return StepResult(list(regs), strip_pac(regs[LR]), lr_restored=False)


def strip_pac(va: int) -> int:
    """Drop pointer-authentication bits from a return address (48-bit VAs; bit 55 selects the half)."""
    return va | 0xFFFF_0000_0000_0000 if va >> 55 & 1 else va & 0x0000_FFFF_FFFF_FFFF


def regs_from_mapping(m) -> list[int]:
    """x0..x30, sp from a register mapping (keys x0..x28, fp|x29, lr|x30, sp); missing ones are 0."""
    get = m.get
    out = [int(get(f"x{k}", 0) or 0) for k in range(29)]
    out.append(int(get("fp", get("x29", 0)) or 0))
    out.append(int(get("lr", get("x30", 0)) or 0))
    out.append(int(get("sp", 0) or 0))
    return out
