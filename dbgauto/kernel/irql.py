"""The IRQL just before the bug check, from the crashing processor's KPRCB.

KeBugCheckEx saves the IRQL it was entered at in ``_KPRCB.DebuggerSavedIRQL`` before raising it; ``!irql``
prints that value ("Debugger saved IRQL for processor 0x1 -- 2 (DISPATCH_LEVEL)", transcripts T08/D01) and
Microsoft's ``!irql`` page says the IRQL saved in a crash dump is the one immediately before the bug check.
``!analyze``'s CURRENT_IRQL shows it for bug checks whose parameters carry no IRQL (0x3B in transcript T12).

Offset: the symbol table's ``_KPRCB.DebuggerSavedIRQL`` when the caller has one, else
:data:`DEBUGGER_SAVED_IRQL_X64` by build. Those values are ``user_types._KPRCB.fields.DebuggerSavedIRQL.offset``
of the six ntkrnlmp ISF tables in ../shared/symbols (x64 builds 7601, 9600, 18362, 19041 (.804 and .1052 agree)
and 22000), checked against them by tests/analysis/test_irql.py. Other builds and architectures need a table.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from dbgauto.kdump.constants import Machine

__all__ = ["DEBUGGER_SAVED_IRQL_X64", "MAX_IRQL", "debugger_saved_irql", "saved_irql_offset"]

DEBUGGER_SAVED_IRQL_X64: Final[Mapping[int, int]] = MappingProxyType(
    {7601: 0x4F18, 9600: 0x5B18, 18362: 0x5B98, 19041: 0x7E98, 22000: 0x8158}
)
MAX_IRQL: Final[Mapping[int, int]] = MappingProxyType({Machine.AMD64: 15, Machine.ARM64: 15, Machine.I386: 31})


def saved_irql_offset(machine: int, build: int | None, table_offset: int | None = None) -> int | None:
    """The offset of ``DebuggerSavedIRQL`` in the KPRCB: the table's, else the per-build x64 row, else None."""
    if table_offset is not None:
        return table_offset
    if machine == Machine.AMD64 and build is not None:
        return DEBUGGER_SAVED_IRQL_X64.get(build)
    return None


def debugger_saved_irql(
    prcb: bytes | bytearray | memoryview | None, machine: int, build: int | None, table_offset: int | None = None
) -> int | None:
    """The saved IRQL byte of a KPRCB copy; None when the offset is unknown, outside the copy, or the byte is not
    an IRQL of this architecture."""
    off = saved_irql_offset(machine, build, table_offset)
    if prcb is None or off is None or not 0 <= off < len(prcb):
        return None
    value = prcb[off]
    return value if value <= MAX_IRQL.get(machine, 31) else None
