"""DUMP_HEADER.DumpType: the enum and the one table of what each value is called.

Three audiences read the same value: the report (``meaning``, plain words), the format layer and
``dbgauto info`` (``layout``, Microsoft's ``DUMP_TYPE_*`` name and how the file is laid out), and the native
engine's debugger emulation (``debugger``, the line cdb prints after "Loading Dump File"). One row per value
keeps them together. Names follow Microsoft's (``mindumpdef.h`` / ``ntiodump.h``); 8, 9 and 0xA have no
official name and are named after what produces them (kdmp-parser's reverse engineering).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DUMP_TYPES",
    "DumpType",
    "DumpTypeNames",
    "dump_kind_line",
    "dump_type_layout",
    "dump_type_meaning",
    "dump_type_name",
]


class DumpType(enum.IntEnum):
    """DUMP_HEADER.DumpType, with the command or setting that produces each."""

    INVALID = -1
    UNKNOWN = 0
    FULL = 1  # classic Complete memory dump (run list); old `.dump /f`, QEMU, Bin2Dmp, MemProcFS
    SUMMARY = 2  # classic Kernel memory dump (XP–Win7), SDMP bitmap
    HEADER = 3  # header only
    TRIAGE = 4  # Small memory dump ("minidump"): `.dump /m`, Minidump folder
    BITMAP_FULL = 5  # Complete or Active memory dump (Win8+): bitmap of RAM
    BITMAP_KERNEL = 6  # Kernel or Automatic memory dump (Win8+), Task Manager live kernel dump
    AUTOMATIC = 7  # setting value only; never seen on disk
    KERNEL_RANGE = 8  # WinDbgX `.dump /k` (RDMP ranges)
    KERNEL_USER_RANGE = 9  # WinDbgX `.dump /ka` (RDMP ranges)
    COMPLETE_RANGE = 0xA  # WinDbgX `.dump /f` (RDMP ranges)


@dataclass(frozen=True, slots=True)
class DumpTypeNames:
    """One DumpType in words: for reports, for the format layer, and as the debugger announces it."""

    meaning: str
    layout: str
    debugger: str | None  # None: the debugger has no line for it (a setting value, never a file)


DUMP_TYPES: Final[dict[int, DumpTypeNames]] = {
    DumpType.FULL: DumpTypeNames(
        "Complete memory dump (full, run list)",
        "full dump: physical memory runs (DUMP_TYPE_FULL)",
        "Kernel Complete Dump File: Full address space is available",
    ),
    DumpType.SUMMARY: DumpTypeNames(
        "Kernel memory dump (summary, bitmap; XP to Windows 7)",
        "summary dump: kernel pages bitmap (DUMP_TYPE_SUMMARY)",
        "Kernel Summary Dump File: Only kernel address space is available",
    ),
    DumpType.HEADER: DumpTypeNames(
        "Header-only dump",
        "header-only dump (DUMP_TYPE_HEADER)",
        "Kernel Dump File: Only the dump header is available",
    ),
    DumpType.TRIAGE: DumpTypeNames(
        "Small memory dump (triage, minidump)",
        "triage dump: small memory dump (DUMP_TYPE_TRIAGE)",
        "Mini Kernel Dump File: Only registers and stack trace are available",
    ),
    DumpType.BITMAP_FULL: DumpTypeNames(
        "Complete or Active memory dump (bitmap)",
        "bitmap dump of all physical memory (DUMP_TYPE_BITMAP_FULL)",
        "Full Kernel Bitmap Dump File: Full address space is available",
    ),
    DumpType.BITMAP_KERNEL: DumpTypeNames(
        "Kernel or Automatic memory dump (bitmap)",
        "bitmap dump of kernel memory (DUMP_TYPE_BITMAP_KERNEL)",
        "Kernel Bitmap Dump File: Kernel address space is available, User address space may not be available.",
    ),
    DumpType.AUTOMATIC: DumpTypeNames(
        "Automatic memory dump (setting value)",
        "automatic (setting value; not a file layout)",
        None,
    ),
    DumpType.KERNEL_RANGE: DumpTypeNames(
        "Kernel memory dump (ranges, .dump /k)",
        "kernel range dump (RDMP; WinDbgX .dump /k)",
        "Kernel Range Dump File: Kernel address space is available",
    ),
    DumpType.KERNEL_USER_RANGE: DumpTypeNames(
        "Kernel and user memory dump (ranges, .dump /ka)",
        "kernel and user range dump (RDMP; WinDbgX .dump /ka)",
        "Kernel and User Range Dump File: Kernel and user address space is available",
    ),
    DumpType.COMPLETE_RANGE: DumpTypeNames(
        "Complete memory dump (ranges, .dump /f)",
        "complete range dump (RDMP; WinDbgX .dump /f)",
        "Complete Range Dump File: Full address space is available",
    ),
}


def dump_type_meaning(dump_type: int | None) -> str | None:
    """A DumpType in plain words, as reports show it (``None`` when unknown)."""
    row = None if dump_type is None else DUMP_TYPES.get(dump_type)
    return None if row is None else row.meaning


def dump_type_layout(dump_type: int) -> str:
    """Microsoft's name and the file layout (``dbgauto info``, the variety explanation)."""
    row = DUMP_TYPES.get(dump_type)
    return row.layout if row is not None else f"unknown DumpType {dump_type:#x}"


def dump_type_name(dump_type: int | None) -> str | None:
    """The enum name (``TRIAGE``, ``BITMAP_KERNEL``), None when the value has none."""
    if dump_type is None:
        return None
    try:
        return DumpType(dump_type).name
    except ValueError:
        return None


def dump_kind_line(dump_type: int | None) -> str:
    """What cdb prints after "Loading Dump File" for this DumpType (64-bit wording; x86 is the same)."""
    row = None if dump_type is None else DUMP_TYPES.get(dump_type)
    if row is None or row.debugger is None:
        return f"Kernel Dump File: DumpType {dump_type} (not a kind the native engine names)"
    return row.debugger
