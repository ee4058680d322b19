"""PE/COFF structures, declared once as :class:`~dbgauto.util.layout.Layout` tables.

Offsets are the Microsoft PE format specification's ("PE Format", learn.microsoft.com): IMAGE_DOS_HEADER,
IMAGE_FILE_HEADER, IMAGE_OPTIONAL_HEADER32/64, IMAGE_SECTION_HEADER, IMAGE_DEBUG_DIRECTORY, the CodeView
RSDS record, IMAGE_EXPORT_DIRECTORY, IMAGE_RESOURCE_DIRECTORY(_ENTRY), IMAGE_RESOURCE_DATA_ENTRY,
RUNTIME_FUNCTION (x64 and ARM64) and VS_FIXEDFILEINFO. Only the fields dbgauto reads are declared.
"""

from __future__ import annotations

from typing import Final

from dbgauto.util.layout import Layout

MZ: Final = 0x5A4D
PE_SIGNATURE: Final = b"PE\0\0"
MAGIC_PE32: Final = 0x10B
MAGIC_PE32_PLUS: Final = 0x20B

MACHINE_I386: Final = 0x14C
MACHINE_AMD64: Final = 0x8664
MACHINE_ARM64: Final = 0xAA64

SCN_CNT_CODE: Final = 0x00000020
SCN_MEM_EXECUTE: Final = 0x20000000

DIR_EXPORT: Final = 0
DIR_RESOURCE: Final = 2
DIR_EXCEPTION: Final = 3
DIR_DEBUG: Final = 6
MAX_DIRECTORIES: Final = 16
MAX_SECTIONS: Final = 96
"""The loader refuses more sections than this (spec: "the Windows loader limits the number of sections to 96")."""

DEBUG_TYPE_CODEVIEW: Final = 2
RT_VERSION: Final = 16

DOS_HEADER: Final = Layout("IMAGE_DOS_HEADER", [("e_magic", 0x00, "H"), ("e_lfanew", 0x3C, "I")], size=0x40)

FILE_HEADER: Final = Layout(
    "IMAGE_FILE_HEADER",
    [
        ("machine", 0x00, "H"),
        ("number_of_sections", 0x02, "H"),
        ("time_date_stamp", 0x04, "I"),
        ("size_of_optional_header", 0x10, "H"),
        ("characteristics", 0x12, "H"),
    ],
    size=0x14,
)

_OPT_COMMON = [
    ("magic", 0x00, "H"),
    ("size_of_code", 0x04, "I"),
    ("address_of_entry_point", 0x10, "I"),
    ("section_alignment", 0x20, "I"),
    ("file_alignment", 0x24, "I"),
    ("major_os_version", 0x28, "H"),
    ("minor_os_version", 0x2A, "H"),
    ("major_image_version", 0x2C, "H"),
    ("minor_image_version", 0x2E, "H"),
    ("size_of_image", 0x38, "I"),
    ("size_of_headers", 0x3C, "I"),
    ("checksum", 0x40, "I"),
    ("subsystem", 0x44, "H"),
    ("dll_characteristics", 0x46, "H"),
]

OPTIONAL_HEADER32: Final = Layout(
    "IMAGE_OPTIONAL_HEADER32",
    [*_OPT_COMMON, ("image_base", 0x1C, "I"), ("number_of_rva_and_sizes", 0x5C, "I")],
    size=0x60,
)
OPTIONAL_HEADER64: Final = Layout(
    "IMAGE_OPTIONAL_HEADER64",
    [*_OPT_COMMON, ("image_base", 0x18, "Q"), ("number_of_rva_and_sizes", 0x6C, "I")],
    size=0x70,
)
DATA_DIRECTORY: Final = Layout("IMAGE_DATA_DIRECTORY", [("rva", 0, "I"), ("size", 4, "I")], size=8)

SECTION_HEADER: Final = Layout(
    "IMAGE_SECTION_HEADER",
    [
        ("name", 0x00, "8s"),
        ("virtual_size", 0x08, "I"),
        ("virtual_address", 0x0C, "I"),
        ("size_of_raw_data", 0x10, "I"),
        ("pointer_to_raw_data", 0x14, "I"),
        ("characteristics", 0x24, "I"),
    ],
    size=0x28,
)

DEBUG_DIRECTORY: Final = Layout(
    "IMAGE_DEBUG_DIRECTORY",
    [
        ("time_date_stamp", 0x04, "I"),
        ("type", 0x0C, "I"),
        ("size_of_data", 0x10, "I"),
        ("address_of_raw_data", 0x14, "I"),
        ("pointer_to_raw_data", 0x18, "I"),
    ],
    size=0x1C,
)

CV_RSDS: Final = Layout(
    "CV_INFO_PDB70",
    [
        ("signature", 0x00, "4s"),
        ("data1", 0x04, "I"),
        ("data2", 0x08, "H"),
        ("data3", 0x0A, "H"),
        ("data4", 0x0C, "8s"),
        ("age", 0x14, "I"),
    ],
    size=0x18,
)

EXPORT_DIRECTORY: Final = Layout(
    "IMAGE_EXPORT_DIRECTORY",
    [
        ("name", 0x0C, "I"),
        ("base", 0x10, "I"),
        ("number_of_functions", 0x14, "I"),
        ("number_of_names", 0x18, "I"),
        ("address_of_functions", 0x1C, "I"),
        ("address_of_names", 0x20, "I"),
        ("address_of_name_ordinals", 0x24, "I"),
    ],
    size=0x28,
)

RESOURCE_DIRECTORY: Final = Layout(
    "IMAGE_RESOURCE_DIRECTORY", [("number_of_named_entries", 0x0C, "H"), ("number_of_id_entries", 0x0E, "H")], size=0x10
)
RESOURCE_DIRECTORY_ENTRY: Final = Layout(
    "IMAGE_RESOURCE_DIRECTORY_ENTRY", [("name", 0x00, "I"), ("offset_to_data", 0x04, "I")], size=8
)
RESOURCE_DATA_ENTRY: Final = Layout("IMAGE_RESOURCE_DATA_ENTRY", [("rva", 0x00, "I"), ("size", 0x04, "I")], size=0x10)

RUNTIME_FUNCTION_X64: Final = Layout(
    "RUNTIME_FUNCTION", [("begin", 0, "I"), ("end", 4, "I"), ("unwind_info", 8, "I")], size=12
)
RUNTIME_FUNCTION_ARM64: Final = Layout("ARM64_RUNTIME_FUNCTION", [("begin", 0, "I"), ("unwind_data", 4, "I")], size=8)

VERSION_BLOCK: Final = Layout(
    "VS_VERSIONINFO block", [("length", 0, "H"), ("value_length", 2, "H"), ("type", 4, "H")], size=6
)
FIXED_FILE_INFO: Final = Layout(
    "VS_FIXEDFILEINFO",
    [
        ("signature", 0x00, "I"),
        ("file_version_ms", 0x08, "I"),
        ("file_version_ls", 0x0C, "I"),
        ("product_version_ms", 0x10, "I"),
        ("product_version_ls", 0x14, "I"),
    ],
    size=0x34,
)
FIXED_FILE_INFO_SIGNATURE: Final = 0xFEEF04BD
