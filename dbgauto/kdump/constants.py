"""Values every part of the format layer shares: DumpType, machines, signatures, page size, triage bits.

Names follow Microsoft's (``mindumpdef.h`` / ``ntiodump.h``); 8, 9 and 0xA have no official name and are
named after what produces them (kdmp-parser's reverse engineering).
"""

from __future__ import annotations

import enum
from typing import Final

PAGE_SIZE: Final = 0x1000
PAGE_SHIFT: Final = 12

SIGNATURE: Final = b"PAGE"
VALID_DUMP32: Final = b"DUMP"  # "PAGEDUMP": 32-bit header, 0x1000 bytes
VALID_DUMP64: Final = b"DU64"  # "PAGEDU64": 64-bit header, 0x2000 bytes
HEADER32_SIZE: Final = 0x1000
HEADER64_SIZE: Final = 0x2000

SUMMARY_SIGNATURE: Final = b"SDMP"  # bitmap sub-header of kernel (and some complete) dumps
FULL_SIGNATURE: Final = b"FDMP"  # bitmap sub-header of complete dumps
RDMP_SIGNATURE: Final = b"RDMP"  # range sub-header of types 8, 9, 0xA
TRIAGE_VALID: Final = 0x44475254  # 'DGRT' multi-char constant; bytes on disk "TRGD"
TRIAGE_VALID_BYTES: Final = b"TRGD"
KDBG_OWNER_TAG: Final = b"KDBG"
DUMP_BLOB_SIGNATURE: Final = b"DumpBlob"


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


DUMP_TYPE_MEANING: Final[dict[int, str]] = {
    DumpType.FULL: "full dump: physical memory runs (DUMP_TYPE_FULL)",
    DumpType.SUMMARY: "summary dump: kernel pages bitmap (DUMP_TYPE_SUMMARY)",
    DumpType.HEADER: "header-only dump (DUMP_TYPE_HEADER)",
    DumpType.TRIAGE: "triage dump: small memory dump (DUMP_TYPE_TRIAGE)",
    DumpType.BITMAP_FULL: "bitmap dump of all physical memory (DUMP_TYPE_BITMAP_FULL)",
    DumpType.BITMAP_KERNEL: "bitmap dump of kernel memory (DUMP_TYPE_BITMAP_KERNEL)",
    DumpType.AUTOMATIC: "automatic (setting value; not a file layout)",
    DumpType.KERNEL_RANGE: "kernel range dump (RDMP; WinDbgX .dump /k)",
    DumpType.KERNEL_USER_RANGE: "kernel and user range dump (RDMP; WinDbgX .dump /ka)",
    DumpType.COMPLETE_RANGE: "complete range dump (RDMP; WinDbgX .dump /f)",
}


class Machine(enum.IntEnum):
    """IMAGE_FILE_MACHINE_* values seen in MachineImageType."""

    I386 = 0x014C
    ARMNT = 0x01C4
    IA64 = 0x0200
    AMD64 = 0x8664
    ARM64 = 0xAA64


class TriageFlag(enum.IntFlag):
    """TRIAGE_DUMP_* bits of DUMP_HEADER.MiniDumpFields: which sections a small dump carries."""

    CONTEXT = 0x0001
    EXCEPTION = 0x0002
    PRCB = 0x0004
    PROCESS = 0x0008
    THREAD = 0x0010
    STACK = 0x0020
    DRIVER_LIST = 0x0040
    BROKEN_DRIVER = 0x0080
    BASIC_INFO = 0x00FF
    MMINFO = 0x0100
    DATAPAGE = 0x0200
    DEBUGGER_DATA = 0x0400
    DATA_BLOCKS = 0x0800


TRIAGE_OPTION_OVERFLOWED: Final = 0x0100


class DumpAttribute(enum.IntFlag):
    """DUMP_FILE_ATTRIBUTES bits of DUMP_HEADER.Attributes."""

    HIBER_CRASH = 1 << 0
    DUMP_DEVICE_POWER_OFF = 1 << 1
    INSUFFICIENT_DUMPFILE_SIZE = 1 << 2
    KERNEL_GENERATED_TRIAGE_DUMP = 1 << 3
    LIVE_DUMP_GENERATED_DUMP = 1 << 4
    DUMP_IS_GENERATED_OFFLINE = 1 << 5
    FILTER_DUMP_FILE = 1 << 6
    EARLY_BOOT_CRASH = 1 << 7
    ENCRYPTED_DUMP_DATA = 1 << 8
    DECRYPTED_DUMP = 1 << 9


FILETIME_EPOCH_OFFSET_100NS: Final = 116444736000000000  # 1601-01-01 → 1970-01-01 in 100 ns units
