"""IMAGE_FILE_MACHINE values: the enum and the one table of how each is spelled.

The debugger's short spelling (``x64``) goes into facts and reports, the ``vertarget`` architecture text
(``x86 compatible``) into the native engine's emulation, and the enum name (``AMD64``) into ``dbgauto info``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ["MACHINES", "Machine", "MachineNames", "machine_arch_text", "machine_enum_name", "machine_name"]


class Machine(enum.IntEnum):
    """IMAGE_FILE_MACHINE_* values seen in MachineImageType."""

    I386 = 0x014C
    ARMNT = 0x01C4
    IA64 = 0x0200
    AMD64 = 0x8664
    ARM64 = 0xAA64


@dataclass(frozen=True, slots=True)
class MachineNames:
    """One machine: the debugger's short name, and its ``vertarget`` architecture text when the native engine
    emulates that target (None: it does not)."""

    short: str
    arch: str | None = None


MACHINES: Final[dict[int, MachineNames]] = {
    Machine.I386: MachineNames("x86", "x86 compatible"),
    Machine.ARMNT: MachineNames("ARM"),
    Machine.IA64: MachineNames("IA64"),
    Machine.AMD64: MachineNames("x64", "x64"),
    Machine.ARM64: MachineNames("ARM64", "ARM 64-bit (AArch64)"),
}


def machine_name(machine: int | None) -> str | None:
    """IMAGE_FILE_MACHINE value → the name the debugger prints (x64, x86, ARM64), else the value in hex."""
    if machine is None:
        return None
    row = MACHINES.get(machine)
    return row.short if row is not None else f"{machine:#06x}"


def machine_enum_name(machine: int | None) -> str | None:
    """The IMAGE_FILE_MACHINE_ suffix (``AMD64``, ``I386``); None when unknown."""
    if machine is None:
        return None
    try:
        return Machine(machine).name
    except ValueError:
        return None


def machine_arch_text(machine: int | None) -> str:
    """The architecture as ``vertarget`` ends its kernel-version line (``x64``, ``x86 compatible``)."""
    row = None if machine is None else MACHINES.get(machine)
    if row is not None and row.arch is not None:
        return row.arch
    return f"machine {machine:#x}" if machine is not None else "unknown machine"
