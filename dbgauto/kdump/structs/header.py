"""DUMP_HEADER32/64 and the sub-headers that follow them (bitmap SDMP/FDMP, RDMP ranges).

Offsets: Microsoft ``mindumpdef.h`` (DUMP_HEADER32/64), cross-checked with kdmp-parser's static_asserts,
volatility3's crash JSON and rizin's ``dmp_specs.h``; see ``../shared/spec/dump-format.md`` §3–§11. The
64-bit header is naturally aligned (hence the padding slots); the 32-bit one is 4-byte packed.
"""

from __future__ import annotations

from typing import Final

from dbgauto.util.layout import Layout

HEADER64: Final = Layout(
    "DUMP_HEADER64",
    [
        ("signature", 0x000, "4s"),  # b"PAGE"
        ("valid_dump", 0x004, "4s"),  # b"DU64"
        ("major_version", 0x008, "I"),  # 0xF free build, 0xC checked build
        ("minor_version", 0x00C, "I"),  # NT build number
        ("directory_table_base", 0x010, "Q"),
        ("pfn_database", 0x018, "Q"),
        ("ps_loaded_module_list", 0x020, "Q"),
        ("ps_active_process_head", 0x028, "Q"),
        ("machine_image_type", 0x030, "I"),
        ("number_processors", 0x034, "I"),
        ("bugcheck_code", 0x038, "I"),
        ("bugcheck_parameters", 0x040, "4Q"),
        ("version_user", 0x060, "32s"),
        ("kd_debugger_data_block", 0x080, "Q"),
        ("physical_memory_block", 0x088, "704s"),  # PHYSICAL_MEMORY_DESCRIPTOR64 (700) + the 4-byte pad it spills into
        ("context_record", 0x348, "3000s"),
        ("exception", 0xF00, "152s"),  # EXCEPTION_RECORD64
        ("dump_type", 0xF98, "I"),
        ("required_dump_space", 0xFA0, "Q"),
        ("system_time", 0xFA8, "Q"),  # FILETIME, UTC
        ("comment", 0xFB0, "128s"),
        ("system_up_time", 0x1030, "Q"),  # 100 ns units
        ("mini_dump_fields", 0x1038, "I"),
        ("secondary_data_state", 0x103C, "I"),
        ("product_type", 0x1040, "I"),
        ("suite_mask", 0x1044, "I"),
        ("writer_status", 0x1048, "I"),
        ("unused1", 0x104C, "B"),
        ("kd_secondary_version", 0x104D, "B"),
        ("unused2", 0x104E, "2s"),
        ("attributes", 0x1050, "I"),
        ("boot_id", 0x1054, "I"),
    ],
    size=0x2000,
)

HEADER32: Final = Layout(
    "DUMP_HEADER32",
    [
        ("signature", 0x000, "4s"),  # b"PAGE"
        ("valid_dump", 0x004, "4s"),  # b"DUMP"
        ("major_version", 0x008, "I"),
        ("minor_version", 0x00C, "I"),
        ("directory_table_base", 0x010, "I"),  # PDPT address when PAE
        ("pfn_database", 0x014, "I"),
        ("ps_loaded_module_list", 0x018, "I"),
        ("ps_active_process_head", 0x01C, "I"),
        ("machine_image_type", 0x020, "I"),
        ("number_processors", 0x024, "I"),
        ("bugcheck_code", 0x028, "I"),
        ("bugcheck_parameters", 0x02C, "4I"),
        ("version_user", 0x03C, "32s"),
        ("pae_enabled", 0x05C, "B"),
        ("kd_secondary_version", 0x05D, "B"),
        ("spare3", 0x05E, "2s"),
        ("kd_debugger_data_block", 0x060, "I"),
        ("physical_memory_block", 0x064, "700s"),  # PHYSICAL_MEMORY_DESCRIPTOR32
        ("context_record", 0x320, "1200s"),
        ("exception", 0x7D0, "80s"),  # EXCEPTION_RECORD32
        ("comment", 0x820, "128s"),
        ("attributes", 0x8A0, "I"),
        ("boot_id", 0x8A4, "I"),
        ("dump_type", 0xF88, "I"),
        ("mini_dump_fields", 0xF8C, "I"),
        ("secondary_data_state", 0xF90, "I"),
        ("product_type", 0xF94, "I"),
        ("suite_mask", 0xF98, "I"),
        ("writer_status", 0xF9C, "I"),
        ("required_dump_space", 0xFA0, "Q"),
        ("system_up_time", 0xFB8, "Q"),
        ("system_time", 0xFC0, "Q"),
    ],
    size=0x1000,
)

# PHYSICAL_MEMORY_DESCRIPTOR64: NumberOfRuns, pad, NumberOfPages, then Run[] {BasePage, PageCount} (u64 each).
PHYSMEM_DESC64: Final = Layout(
    "PHYSICAL_MEMORY_DESCRIPTOR64", [("number_of_runs", 0x0, "I"), ("number_of_pages", 0x8, "Q")], size=0x10
)
PHYSMEM_RUN64: Final = Layout("PHYSICAL_MEMORY_RUN64", [("base_page", 0x0, "Q"), ("page_count", 0x8, "Q")], size=0x10)
PHYSMEM_MAX_RUNS64: Final = 43  # the last run spills into the 4-byte pad before ContextRecord

# PHYSICAL_MEMORY_DESCRIPTOR32: NumberOfRuns, NumberOfPages, then Run[] {BasePage, PageCount} (u32 each).
PHYSMEM_DESC32: Final = Layout(
    "PHYSICAL_MEMORY_DESCRIPTOR32", [("number_of_runs", 0x0, "I"), ("number_of_pages", 0x4, "I")], size=0x8
)
PHYSMEM_RUN32: Final = Layout("PHYSICAL_MEMORY_RUN32", [("base_page", 0x0, "I"), ("page_count", 0x4, "I")], size=0x8)
PHYSMEM_MAX_RUNS32: Final = 86

# Bitmap sub-header of DumpType 5/6 (and modern type 2), at the end of the main header. The bitmap follows.
BITMAP_HEADER: Final = Layout(
    "BMP_HEADER",
    [
        ("signature", 0x00, "4s"),  # b"SDMP" or b"FDMP"
        ("valid_dump", 0x04, "4s"),  # b"DUMP"
        ("dump_options", 0x08, "I"),
        ("first_page", 0x20, "Q"),  # absolute file offset of the first stored page ("HeaderSize")
        ("total_present_pages", 0x28, "Q"),  # bits set
        ("bitmap_size", 0x30, "Q"),  # bits in the bitmap (highest PFN + 1, rounded)
    ],
    size=0x38,
)

# XP/2003-era SUMMARY_DUMP sub-header of DumpType 2 ([ntiodump], Singularity; spec §10, layout uncertain):
# u32 counts, then an on-disk RTL_BITMAP {SizeOfBitMap u32, reserved}; bitmap at +0x20 (32-bit) / +0x28 (64-bit).
BITMAP_HEADER_OLD: Final = Layout(
    "SUMMARY_DUMP_OLD",
    [
        ("signature", 0x00, "4s"),  # b"SDMP"
        ("valid_dump", 0x04, "4s"),  # b"DUMP"
        ("dump_options", 0x08, "I"),
        ("header_size", 0x0C, "I"),  # offset of the first stored page
        ("bitmap_size", 0x10, "I"),  # bits
        ("pages", 0x14, "I"),  # bits set
        ("size_of_bitmap", 0x18, "I"),  # RTL_BITMAP.SizeOfBitMap
    ],
    size=0x20,
)

# RDMP sub-header of DumpType 8/9/0xA (kdmp-parser's reverse engineering; read-only, never written).
RDMP_HEADER: Final = Layout(
    "RDMP_HEADER64",
    [
        ("marker", 0x00, "I"),  # 0x40
        ("signature", 0x04, "4s"),  # b"RDMP"
        ("valid_dump", 0x08, "4s"),  # b"DUMP"
        ("metadata_size", 0x10, "Q"),
        ("first_page_offset", 0x18, "Q"),  # absolute file offset
    ],
    size=0x20,
)
# Types 8/9: two unknown u64 at +0x20/+0x28, then {PageFileNumber, NumberOfPages} pairs from +0x30.
# Type 0xA: NumberOfRanges u32 @+0x20, two u16, TotalNumberOfPages u64 @+0x28, pairs from +0x30.
RDMP_FULL_HEADER: Final = Layout(
    "FULL_RDMP_HEADER64",
    [("number_of_ranges", 0x20, "I"), ("total_number_of_pages", 0x28, "Q")],
    size=0x30,
)
RDMP_RANGE: Final = Layout("PFN_RANGE", [("page_file_number", 0x0, "Q"), ("number_of_pages", 0x8, "Q")], size=0x10)
RDMP_RANGES_OFFSET: Final = 0x30  # relative to the RDMP sub-header
