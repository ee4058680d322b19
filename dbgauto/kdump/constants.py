"""Values every part of the format layer shares: signatures, page size, triage bits (and, from
``dbgauto.vocab``, the DumpType and Machine enums, whose names and meanings are tabled there).

Names follow Microsoft's (``mindumpdef.h`` / ``ntiodump.h``).
"""

from __future__ import annotations

import enum
from typing import Final

# re-exported: the format layer names them here; their names and meanings are tabled in dbgauto.vocab
from dbgauto.vocab.dumptypes import DumpType as DumpType
from dbgauto.vocab.machines import Machine as Machine

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
