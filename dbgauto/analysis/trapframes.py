"""Where x64 _KTRAP_FRAMEs lie: the address WinDbg prints as ``(TrapFrame @ ...)``, and the faulting context of
bug checks whose parameters give no CONTEXT record.

WinDbg puts ``(TrapFrame @ ADDR)`` on the frame of the trap handler whose _KTRAP_FRAME the next frame came from
(``kv``, ``!thread``, ``!process ... 7``; not plain ``k``, not ``!analyze``'s STACK_TEXT — see the transcripts
T01 and D01), and ``TRAP_FRAME:  ADDR -- (.trap 0xADDR)`` in ``!analyze -v``. The unwinder marks the handler's
frame; the address is the one _KTRAP_FRAME near that frame whose saved ``Rip``/``Rsp`` are exactly the next
frame's pc and stack pointer (for ``KiPageFault`` it is the handler's own Child-SP, T01/T08).

0x1E (KMODE_EXCEPTION_NOT_HANDLED) names the exception address (P2) but no context record: WinDbg finds the
faulting context through the exception dispatch's trap frame. Without unwind data (a small dump holds no
images) the same trap frame is found on the stack copy as the _KTRAP_FRAME whose saved ``Rip`` is the exception
address, with a kernel ``SegCs`` and a saved ``Rsp`` above it. 0x8E gives the trap frame itself (P3).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Final

from dbgauto.unwind.model import Memory
from dbgauto.unwind.trapframe import KTRAP_FRAME_X64_SIZE, read_ktrap_frame

__all__ = ["ABOVE_HANDLER_SP", "BELOW_HANDLER_SP", "find_by_rip", "trap_frame_of"]

BELOW_HANDLER_SP: Final = 0x200  # a handler may have pushed below its trap frame (KxRetireDpcList, D01)
ABOVE_HANDLER_SP: Final = 0x1000  # system-service handlers keep locals below theirs (KiSystemServiceCopyEnd +0x70)
MAX_STACK_SEARCH: Final = 0x10000  # bytes of stack searched for a 0x1E trap frame (a kernel stack is 24-72 KiB)


def _q(raw: bytes | bytearray | memoryview, at: int) -> int:
    return struct.unpack_from("<Q", raw, at)[0]


def trap_frame_of(read: Memory, layout: Mapping[str, int], handler_sp: int, next_pc: int, next_sp: int) -> int | None:
    """The address of the _KTRAP_FRAME a trap handler's frame (Child-SP ``handler_sp``) holds, given the frame the
    walk continued with; the handler's own Child-SP is tried first, then the window around it. None if absent."""
    rip, rsp = layout["Rip"], layout["Rsp"]
    lo = max(0, handler_sp - BELOW_HANDLER_SP) & ~7
    hi = handler_sp + ABOVE_HANDLER_SP
    span = hi - lo + max(rip, rsp) + 8
    try:
        raw = read(lo, span)
    except Exception:  # an unreadable window: fall back to per-candidate reads
        raw = None
    if raw is not None and len(raw) >= span:

        def matches(va: int) -> bool:
            at = va - lo
            return _q(raw, at + rip) == next_pc and _q(raw, at + rsp) == next_sp

    else:

        def matches(va: int) -> bool:
            try:
                a, b = read(va + rip, 8), read(va + rsp, 8)
            except Exception:  # unreadable: not this one
                return False
            return bool(a and b and len(a) >= 8 and len(b) >= 8 and _q(a, 0) == next_pc and _q(b, 0) == next_sp)

    first = handler_sp & ~7
    if first == handler_sp and matches(first):
        return first
    for va in range(lo, hi + 1, 8):
        if va != first and matches(va):
            return va
    return None


def find_by_rip(
    stack: bytes | bytearray | memoryview | None,
    top: int | None,
    read: Memory,
    layout: Mapping[str, int],
    rip: int,
) -> tuple[int, dict[str, int]] | None:
    """The innermost _KTRAP_FRAME on the stack copy ``stack`` (starting at VA ``top``) that saved ``rip`` for kernel
    code: (its address, the registers it saved). None when there is none or it is implausible."""
    if not stack or top is None or not rip:
        return None
    data = bytes(memoryview(stack)[:MAX_STACK_SEARCH])
    needle = struct.pack("<Q", rip)
    off = layout["Rip"]
    at = data.find(needle)
    while at >= 0:
        va = top + at - off
        if (top + at) % 8 == 0 and va >= top:
            regs = read_ktrap_frame(read, va, layout)
            cs = regs.get("cs") if regs is not None else None
            limit = va + KTRAP_FRAME_X64_SIZE + MAX_STACK_SEARCH
            if regs is not None and cs and cs & 3 == 0 and va < regs["rsp"] < limit:
                return va, regs
        at = data.find(needle, at + 1)
    return None
