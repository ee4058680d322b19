"""Small memory dump (triage, DumpType 4) structures: TRIAGE_DUMP32/64 and the sections it points to.

Offsets: Microsoft ``ntiodump.h`` as restated in ``../shared/spec/triage-format.md`` (§2–§4, §6), checked byte by
byte against the Windows-written sample (``../shared/spec/observed-triage-x64.md``). All ``*_offset`` fields are
absolute file offsets. Field names are snake_case versions of Microsoft's.
"""

from __future__ import annotations

from typing import Final

from dbgauto.util.layout import Layout

TRIAGE_DUMP64: Final = Layout(
    "TRIAGE_DUMP64",
    [
        ("service_pack_build", 0x00, "I"),
        ("size_of_dump", 0x04, "I"),
        ("valid_offset", 0x08, "I"),
        ("context_offset", 0x0C, "I"),
        ("exception_offset", 0x10, "I"),
        ("mm_offset", 0x14, "I"),
        ("unloaded_drivers_offset", 0x18, "I"),
        ("prcb_offset", 0x1C, "I"),
        ("process_offset", 0x20, "I"),
        ("thread_offset", 0x24, "I"),
        ("call_stack_offset", 0x28, "I"),
        ("size_of_call_stack", 0x2C, "I"),
        ("driver_list_offset", 0x30, "I"),
        ("driver_count", 0x34, "I"),
        ("string_pool_offset", 0x38, "I"),
        ("string_pool_size", 0x3C, "I"),
        ("broken_driver_offset", 0x40, "I"),
        ("triage_options", 0x44, "I"),
        ("top_of_stack", 0x48, "Q"),
        ("bstore_offset", 0x50, "I"),  # ArchitectureSpecific.Ia64 (zero elsewhere)
        ("size_of_bstore", 0x54, "I"),
        ("limit_of_bstore", 0x58, "Q"),
        ("data_page_address", 0x60, "Q"),
        ("data_page_offset", 0x68, "I"),
        ("data_page_size", 0x6C, "I"),
        ("debugger_data_offset", 0x70, "I"),
        ("debugger_data_size", 0x74, "I"),
        ("data_blocks_offset", 0x78, "I"),
        ("data_blocks_count", 0x7C, "I"),
    ],
    size=0x80,
)

TRIAGE_DUMP32: Final = Layout(
    "TRIAGE_DUMP32",
    [
        ("service_pack_build", 0x00, "I"),
        ("size_of_dump", 0x04, "I"),
        ("valid_offset", 0x08, "I"),
        ("context_offset", 0x0C, "I"),
        ("exception_offset", 0x10, "I"),
        ("mm_offset", 0x14, "I"),
        ("unloaded_drivers_offset", 0x18, "I"),
        ("prcb_offset", 0x1C, "I"),
        ("process_offset", 0x20, "I"),
        ("thread_offset", 0x24, "I"),
        ("call_stack_offset", 0x28, "I"),
        ("size_of_call_stack", 0x2C, "I"),
        ("driver_list_offset", 0x30, "I"),
        ("driver_count", 0x34, "I"),
        ("string_pool_offset", 0x38, "I"),
        ("string_pool_size", 0x3C, "I"),
        ("broken_driver_offset", 0x40, "I"),
        ("triage_options", 0x44, "I"),
        ("top_of_stack", 0x48, "I"),
        ("data_page_address", 0x4C, "I"),  # ntiodump names (ghidra calls 0x4C-0x57 BStore*)
        ("data_page_offset", 0x50, "I"),
        ("data_page_size", 0x54, "I"),
        ("debugger_data_offset", 0x58, "I"),
        ("debugger_data_size", 0x5C, "I"),
        ("data_blocks_offset", 0x60, "I"),
        ("data_blocks_count", 0x64, "I"),
    ],
    size=0x68,
)

TRIAGE_HEADER_OFFSET64: Final = 0x2000
TRIAGE_HEADER_OFFSET32: Final = 0x1000

# The fields of TRIAGE_DUMP64 that are absolute file offsets, with the section name each one opens.
OFFSET_FIELDS: Final = (
    ("context_offset", "context"),
    ("exception_offset", "exception"),
    ("mm_offset", "mm"),
    ("unloaded_drivers_offset", "unloaded_drivers"),
    ("prcb_offset", "prcb"),
    ("process_offset", "process"),
    ("thread_offset", "thread"),
    ("call_stack_offset", "call_stack"),
    ("driver_list_offset", "driver_list"),
    ("string_pool_offset", "string_pool"),
    ("broken_driver_offset", "broken_driver"),
    ("data_page_offset", "data_page"),
    ("debugger_data_offset", "debugger_data"),
    ("data_blocks_offset", "data_blocks"),
)

# --- DUMP_MM_STORAGE32/64 (MmOffset) ---

_MM_HEAD = [
    ("version", 0x00, "I"),
    ("size", 0x04, "I"),
    ("mm_special_pool_tag", 0x08, "I"),
    ("mi_triage_action_taken", 0x0C, "I"),
    ("mm_verify_driver_level", 0x10, "I"),
    ("kernel_verifier", 0x14, "I"),
]
_MM_POINTER_NAMES = (
    "mm_maximum_non_paged_pool",
    "mm_allocated_non_paged_pool",
    "paged_pool_maximum",
    "paged_pool_allocated",
    "committed_pages",
    "committed_pages_peak",
    "commit_limit_maximum",
)
DUMP_MM_STORAGE64: Final = Layout(
    "DUMP_MM_STORAGE64", [*_MM_HEAD, *((n, 0x18 + 8 * i, "Q") for i, n in enumerate(_MM_POINTER_NAMES))], size=0x50
)
DUMP_MM_STORAGE32: Final = Layout(
    "DUMP_MM_STORAGE32", [*_MM_HEAD, *((n, 0x18 + 4 * i, "I") for i, n in enumerate(_MM_POINTER_NAMES))], size=0x34
)

# --- Unloaded drivers (UnloadedDriversOffset): a count, then DUMP_UNLOADED_DRIVERS32/64 ---

MAX_UNLOADED_NAME_CHARS: Final = 12  # MAX_UNLOADED_NAME_LENGTH = 24 bytes
UNLOADED_COUNT_SIZE64: Final = 8  # ULONG64 count on x64 (real sample: 0xE8 = 8 + 4 x 0x38)
UNLOADED_COUNT_SIZE32: Final = 4  # ULONG on 32-bit: ntiodump declares the count as a ULONG; no 32-bit sample seen

DUMP_UNLOADED_DRIVERS64: Final = Layout(
    "DUMP_UNLOADED_DRIVERS64",
    [
        ("name_length", 0x00, "H"),  # UNICODE_STRING64.Length, bytes
        ("name_maximum_length", 0x02, "H"),
        ("name_pad", 0x04, "I"),
        ("name_buffer", 0x08, "Q"),  # a target VA: meaningless in the file (0 in the sample)
        ("driver_name", 0x10, "24s"),  # WCHAR[12], first 12 characters, not necessarily NUL-terminated
        ("start_address", 0x28, "Q"),
        ("end_address", 0x30, "Q"),
    ],
    size=0x38,
)
DUMP_UNLOADED_DRIVERS32: Final = Layout(
    "DUMP_UNLOADED_DRIVERS32",
    [
        ("name_length", 0x00, "H"),
        ("name_maximum_length", 0x02, "H"),
        ("name_buffer", 0x04, "I"),
        ("driver_name", 0x08, "24s"),
        ("start_address", 0x20, "I"),
        ("end_address", 0x24, "I"),
    ],
    size=0x28,
)

# --- Driver list: DUMP_DRIVER_ENTRY32/64 = DriverNameOffset + KLDR_DATA_TABLE_ENTRY (debugger-side) ---

DRIVER_ENTRY_SIZE64: Final = 0x90  # u32 DriverNameOffset, u32 pad, KLDR_DATA_TABLE_ENTRY64 (0x88)
DRIVER_ENTRY_SIZE32: Final = 0x4C  # u32 DriverNameOffset, KLDR_DATA_TABLE_ENTRY32 (0x48)
LDR_IN_ENTRY64: Final = 0x08
LDR_IN_ENTRY32: Final = 0x04

# Only the fields Windows fills (observed-triage-x64.md: DllBase, SizeOfImage, CheckSum, TimeDateStamp).
DUMP_DRIVER_ENTRY64: Final = Layout(
    "DUMP_DRIVER_ENTRY64",
    [
        ("driver_name_offset", 0x00, "I"),
        ("dll_base", LDR_IN_ENTRY64 + 0x30, "Q"),
        ("size_of_image", LDR_IN_ENTRY64 + 0x40, "I"),
        ("checksum", LDR_IN_ENTRY64 + 0x78, "I"),
        ("time_date_stamp", LDR_IN_ENTRY64 + 0x80, "I"),
    ],
    size=DRIVER_ENTRY_SIZE64,
)
DUMP_DRIVER_ENTRY32: Final = Layout(
    "DUMP_DRIVER_ENTRY32",
    [
        ("driver_name_offset", 0x00, "I"),
        ("dll_base", LDR_IN_ENTRY32 + 0x18, "I"),
        ("size_of_image", LDR_IN_ENTRY32 + 0x20, "I"),
        ("checksum", LDR_IN_ENTRY32 + 0x40, "I"),
        ("time_date_stamp", LDR_IN_ENTRY32 + 0x44, "I"),
    ],
    size=DRIVER_ENTRY_SIZE32,
)

# DUMP_STRING: u32 Length (UTF-16 characters, not bytes), WCHAR Buffer[Length], WCHAR 0; 8-byte aligned.

# --- TRIAGE_DATA_BLOCK (same 16 bytes in 32-bit dumps per ntiodump) ---

TRIAGE_DATA_BLOCK: Final = Layout(
    "TRIAGE_DATA_BLOCK", [("address", 0x0, "Q"), ("offset", 0x8, "I"), ("size", 0xC, "I")], size=0x10
)

# --- DumpBlob secondary data after SizeOfDump (observed-triage-x64.md) ---

DUMP_BLOB_FILE_HEADER: Final = Layout(
    "DUMP_BLOB_FILE_HEADER",
    [("signature", 0x0, "8s"), ("header_size", 0x8, "I"), ("build_number", 0xC, "I")],  # b"DumpBlob"
    size=0x10,
)
DUMP_BLOB_HEADER: Final = Layout(
    "DUMP_BLOB_HEADER",
    [
        ("header_size", 0x00, "I"),  # 0x20
        ("tag", 0x04, "16s"),  # GUID, Microsoft byte order (uuid.UUID(bytes_le=...))
        ("data_size", 0x14, "I"),
        ("pre_pad", 0x18, "I"),
        ("post_pad", 0x1C, "I"),
    ],
    size=0x20,
)
