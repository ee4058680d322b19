"""x86 unwinding with FPO frame data: the FrameData program strings, and epilogs read from the code.

A FrameData record's program is postfix: ``$T0 .raSearch = $eip $T0 ^ = $esp $T0 4 + = $ebx $T0 4 - ^ =``
assigns ``$T0`` the address of the return address, then the caller's eip (``^`` reads a 32-bit word), esp and
the saved registers. Operands are registers (``$eip $esp $ebp $ebx $esi $edi $eax $ecx $edx``), temporaries
(``$T0``..), numbers and the search variables ``.raSearch``/``.raSearchStart``: esp + the callee's parameter
bytes + locals + saved registers, moved up at most :data:`RA_SEARCH_WORDS` words to the first plausible return
address (in code, after a call: args pushed for a call not yet made shift esp), else searched from below the
callee's parameters,
``.cbLocals``, ``.cbSavedRegs``, ``.cbParams``, ``.cbCalleeParams``; operators ``+ - * / % @`` (``@``: align
down), ``^`` and ``=``. The evaluator is bounded (tokens, stack depth, reads) and raises :class:`FpoError` on
anything else, which the walker turns into a warning.

FrameData says nothing about epilogs, where the stack is already partly released: for the innermost frame the
code at eip is read and, when it is ``add esp, n`` / ``mov esp, ebp`` / ``leave`` / ``pop r32`` up to a
``ret``, those instructions are emulated instead.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Final

from dbgauto.symbols.fpo import FrameData
from dbgauto.unwind.model import Memory

REGS: Final = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
MAX_TOKENS: Final = 256
MAX_STACK: Final = 64
MAX_READS: Final = 64
RA_SEARCH_WORDS: Final = 4
MAX_SEARCH_WORDS: Final = 64
MAX_EPILOG_INSNS: Final = 12
_MASK: Final = 0xFFFFFFFF
_U32 = struct.Struct("<I")


class FpoError(ValueError):
    """A program string that cannot be evaluated (the reason goes into a walker warning)."""


def _u32(read: Memory, va: int) -> int | None:
    b = read(va & _MASK, 4)
    if b is None or len(b) < 4:
        return None
    return _U32.unpack_from(b)[0]


def _binary(op: str, a: int, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a // b
    if op == "%":
        return a % b
    return a & ~(b - 1)  # "@": align down


def evaluate(program: str, variables: Mapping[str, int], read: Memory) -> dict[str, int]:
    """Run ``program`` with the given variables; return every variable it assigned."""
    tokens = program.split()
    if len(tokens) > MAX_TOKENS:
        raise FpoError(f"program of {len(tokens)} tokens (more than {MAX_TOKENS})")
    env = dict(variables)
    out: dict[str, int] = {}
    stack: list[int | str] = []
    reads = 0

    def value(x: int | str) -> int:
        if isinstance(x, int):
            return x
        if x not in env:
            raise FpoError(f"{x} is used before it has a value")
        return env[x]

    for tok in tokens:
        if tok in ("+", "-", "*", "/", "%", "@"):
            if len(stack) < 2:
                raise FpoError(f"operator {tok} needs two operands")
            b, a = value(stack.pop()), value(stack.pop())
            if tok in ("/", "%", "@") and b == 0:
                raise FpoError(f"operator {tok} with a zero divisor")
            r = _binary(tok, a, b)
            stack.append(r & _MASK)
        elif tok == "^":
            if not stack:
                raise FpoError("^ needs an operand")
            reads += 1
            if reads > MAX_READS:
                raise FpoError(f"more than {MAX_READS} memory reads")
            at = value(stack.pop())
            v = _u32(read, at)
            if v is None:
                raise FpoError(f"memory at {at:#x} is unreadable")
            stack.append(v)
        elif tok == "=":
            if len(stack) < 2:
                raise FpoError("= needs a name and a value")
            v, name = stack.pop(), stack.pop()
            if not isinstance(name, str):
                raise FpoError("= assigns to a number")
            env[name] = out[name] = value(v)
        elif tok[0] in "$.":
            stack.append(tok)
        else:
            try:
                stack.append(int(tok, 0) & _MASK)
            except ValueError:
                raise FpoError(f"unknown token {tok[:32]!r}") from None
        if len(stack) > MAX_STACK:
            raise FpoError(f"evaluation stack deeper than {MAX_STACK}")
    if stack:
        raise FpoError(f"{len(stack)} values left on the stack")
    return out


def step(
    fd: FrameData,
    regs: list[int],
    read: Memory,
    *,
    callee_params: int,
    plausible: Callable[[int], bool],
    interrupted: bool = False,
) -> tuple[list[int], int]:
    """The caller's registers (REGS order) and eip for a frame described by ``fd``; raises FpoError.
    ``interrupted``: eip is where execution stopped (not a return address), so arguments pushed for a call
    not yet made may lie below the frame — the search goes up to :data:`MAX_SEARCH_WORDS` words."""
    if fd.program is None:
        raise FpoError("FrameData without a program string (old FPO records are not used)")
    esp = regs[4]
    # The unwound esp of the callee is just above its return address, below the arguments its caller pushed
    # (cdecl or stdcall alike): the search starts past them, as Breakpad's; then, in case the callee's
    # parameter size was unknown or wrong, from below them.
    low = (esp + fd.locals_size + fd.saved_regs_size) & _MASK
    start = (low + callee_params) & _MASK
    below = min(callee_params // 4, MAX_SEARCH_WORDS)
    ra = start
    up = MAX_SEARCH_WORDS if interrupted else RA_SEARCH_WORDS
    for at in [start + 4 * k for k in range(up)] + [low + 4 * k for k in range(below)]:
        v = _u32(read, at)
        if v is not None and plausible(v):
            ra = at & _MASK
            break
    variables = {f"${r}": regs[i] for i, r in enumerate(REGS)}
    variables.update(
        {
            ".raSearch": ra,
            ".raSearchStart": ra,
            ".cbLocals": fd.locals_size,
            ".cbSavedRegs": fd.saved_regs_size,
            ".cbParams": fd.params_size,
            ".cbCalleeParams": callee_params,
        }
    )
    got = evaluate(fd.program, variables, read)
    if "$eip" not in got or "$esp" not in got:
        raise FpoError("the program does not assign $eip and $esp")
    new = list(regs)
    for i, r in enumerate(REGS):
        if f"${r}" in got:
            new[i] = got[f"${r}"]
    return new, got["$eip"]


def epilog_step(code: bytes, regs: list[int], read: Memory) -> tuple[list[int], int] | None:
    """When ``code`` (the bytes at eip) is an epilog — add esp / mov esp, ebp / leave / pop r32 up to a
    ret — emulate it; the caller's registers and eip, or None when it is not an epilog."""
    regs = list(regs)
    i = 0
    for _ in range(MAX_EPILOG_INSNS):
        if i >= len(code):
            return None
        b = code[i]
        if 0x58 <= b <= 0x5F:  # pop r32
            v = _u32(read, regs[4])
            if v is None:
                return None
            regs[b - 0x58] = v
            regs[4] = (regs[4] + 4) & _MASK
            i += 1
        elif b == 0x83 and code[i + 1 : i + 2] == b"\xc4" and i + 2 < len(code):  # add esp, imm8
            regs[4] = (regs[4] + (code[i + 2] - 256 if code[i + 2] > 127 else code[i + 2])) & _MASK
            i += 3
        elif b == 0x81 and code[i + 1 : i + 2] == b"\xc4" and i + 6 <= len(code):  # add esp, imm32
            regs[4] = (regs[4] + _U32.unpack_from(code, i + 2)[0]) & _MASK
            i += 6
        elif code[i : i + 2] in (b"\x89\xec", b"\x8b\xe5"):  # mov esp, ebp
            regs[4] = regs[5]
            i += 2
        elif b == 0xC9:  # leave
            v = _u32(read, regs[5])
            if v is None:
                return None
            regs[4] = (regs[5] + 4) & _MASK
            regs[5] = v
            i += 1
        elif b in (0xC3, 0xC2):  # ret / ret imm16
            eip = _u32(read, regs[4])
            if eip is None:
                return None
            # esp just above the return address, as the FrameData programs give it: a ``ret n`` also pops
            # n bytes of arguments, which the caller's step accounts for as the callee's parameters
            regs[4] = (regs[4] + 4) & _MASK
            return regs, eip
        else:
            return None
    return None


def regs_from_mapping(m: Mapping[str, int]) -> list[int]:
    return [int(m.get(r, 0) or 0) for r in REGS]
