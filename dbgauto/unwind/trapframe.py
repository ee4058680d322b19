"""x64 kernel trap frames: which functions build a ``_KTRAP_FRAME`` and how to read the context it saved.

A trap handler (``KiPageFault``, ``KiSystemCall64``, ...) stores the interrupted thread's volatile registers,
``Rbp`` and the hardware interrupt frame in a ``_KTRAP_FRAME`` on the kernel stack. The hardware frame (``Rip``,
``SegCs``, ``EFlags``, ``Rsp``, ``SegSs``) is the frame the handler's ``UWOP_PUSH_MACHFRAME`` describes, so the
trap frame starts ``Rip``'s offset below the machine frame. Non-volatile registers are not in the trap frame:
they are what the unwind of the handler itself recovered.

Offsets: from the symbol table's ``_KTRAP_FRAME`` when there is one, else :data:`KTRAP_FRAME_X64`. Those
constants equal ``user_types._KTRAP_FRAME.fields`` of all six ntkrnlmp ISF tables in ../shared/symbols
(Windows 10/11 builds; size 0x190), checked by tests/unwind/test_trapframe.py; the layout has been unchanged
since Windows 8.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from dbgauto.unwind.model import Memory

KTRAP_FRAME_X64: Final[Mapping[str, int]] = MappingProxyType(
    {
        "Rax": 0x30,
        "Rcx": 0x38,
        "Rdx": 0x40,
        "R8": 0x48,
        "R9": 0x50,
        "R10": 0x58,
        "R11": 0x60,
        "Rbp": 0x158,
        "Rip": 0x168,
        "SegCs": 0x170,
        "EFlags": 0x178,
        "Rsp": 0x180,
        "SegSs": 0x188,
    }
)
KTRAP_FRAME_X64_SIZE: Final = 0x190
RBP_OFFSET_IN_HANDLERS: Final = 0x80  # Ki* handlers keep rbp = trap frame + 0x80 (lea rbp, [rsp+80h])
_REGISTER: Final = {
    "Rax": "rax",
    "Rcx": "rcx",
    "Rdx": "rdx",
    "R8": "r8",
    "R9": "r9",
    "R10": "r10",
    "R11": "r11",
    "Rbp": "rbp",
    "Rip": "rip",
    "Rsp": "rsp",
}
_SMALL: Final = {"SegCs": ("cs", "<H"), "SegSs": ("ss", "<H"), "EFlags": ("eflags", "<I")}
USER_LIMIT: Final = 0x0000_8000_0000_0000

TRAP_HANDLER_PREFIXES: Final = (
    "KiPageFault",
    "KiGeneralProtectionFault",
    "KiBreakpointTrap",
    "KiDebugTrapOrFault",
    "KiDebugServiceTrap",
    "KiSystemCall64",
    "KiSystemCall32",
    "KiSystemServiceCopy",
    "KiSystemServiceExit",
    "KiSystemServiceStart",
    "KiSystemServiceRepeat",
    "KiSystemServiceGdiTebAccess",
    "KiDivideErrorFault",
    "KiInvalidOpcodeFault",
    "KiOverflowTrap",
    "KiBoundFault",
    "KiNpxNotAvailableFault",
    "KiDoubleFaultAbort",
    "KiNpxSegmentOverrunAbort",
    "KiInvalidTssFault",
    "KiSegmentNotPresentFault",
    "KiStackFault",
    "KiFloatingErrorFault",
    "KiAlignmentFault",
    "KiMcheckAbort",
    "KiNmiInterrupt",
    "KiXmmException",
    "KiVirtualizationException",
    "KiControlProtectionFault",
    "KiRaiseSecurityCheckFailure",
    "KiRaiseAssertion",
    "KiApcInterrupt",
    "KiDpcInterrupt",
    "KiIpiInterrupt",
    "KiInterruptDispatch",
    "KiIsrThunk",
)


def is_trap_handler(name: str | None) -> bool:
    """True for the kernel functions that build a _KTRAP_FRAME (``nt!`` prefix and ``Shadow`` variants accepted)."""
    if not name:
        return False
    name = name.rsplit("!", 1)[-1]
    return name.startswith(TRAP_HANDLER_PREFIXES)


def layout_from_type(fields: Mapping[str, Any] | None) -> dict[str, int]:
    """The offsets to use: the symbol table's ``_KTRAP_FRAME`` fields (``FieldInfo`` or plain offsets) where it
    names them, the constants for any it lacks."""
    out = dict(KTRAP_FRAME_X64)
    for name in out:
        f = fields.get(name) if fields else None
        off = getattr(f, "offset", f)
        if isinstance(off, int) and 0 <= off < 0x1000:
            out[name] = off
    return out


def read_ktrap_frame(read: Memory, va: int, layout: Mapping[str, int] = KTRAP_FRAME_X64) -> dict[str, int] | None:
    """The registers a _KTRAP_FRAME at ``va`` saved (rax..r11, rbp, rip, rsp, cs, ss, eflags); None when it is
    unreadable or implausible (zero rip/rsp, a user-mode cs with a kernel rip or the reverse)."""
    regs: dict[str, int] = {}
    for field, reg in _REGISTER.items():
        b = read(va + layout[field], 8)
        if b is None or len(b) < 8:
            return None
        regs[reg] = struct.unpack_from("<Q", b)[0]
    for field, (reg, fmt) in _SMALL.items():
        size = struct.calcsize(fmt)
        b = read(va + layout[field], size)
        if b is not None and len(b) >= size:
            regs[reg] = struct.unpack_from(fmt, b)[0]
    if not regs["rip"] or not regs["rsp"]:
        return None
    cs = regs.get("cs")
    if cs is not None and cs != 0:
        user = cs & 3 == 3
        if user != (regs["rip"] < USER_LIMIT):
            return None
    return regs
