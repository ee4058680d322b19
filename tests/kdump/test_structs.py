"""Pin every Layout row against the spec tables (dump-format.md §3, §4, §7, §10, §11; kd-structures.md §6, §7).

The expected (offset, size) pairs are typed in from the spec, not derived from the Layouts, so a wrong row fails.
"""

from __future__ import annotations

import pytest

from dbgauto.kdump.structs import context as ctx
from dbgauto.kdump.structs import header as hdr
from dbgauto.util.layout import Layout

HEADER64_SPEC = {
    "signature": (0x000, 4),
    "valid_dump": (0x004, 4),
    "major_version": (0x008, 4),
    "minor_version": (0x00C, 4),
    "directory_table_base": (0x010, 8),
    "pfn_database": (0x018, 8),
    "ps_loaded_module_list": (0x020, 8),
    "ps_active_process_head": (0x028, 8),
    "machine_image_type": (0x030, 4),
    "number_processors": (0x034, 4),
    "bugcheck_code": (0x038, 4),
    "bugcheck_parameters": (0x040, 32),
    "version_user": (0x060, 32),
    "kd_debugger_data_block": (0x080, 8),
    "physical_memory_block": (0x088, 704),  # 700-byte descriptor + the 4-byte pad at 0x344
    "context_record": (0x348, 3000),
    "exception": (0xF00, 0x98),
    "dump_type": (0xF98, 4),
    "required_dump_space": (0xFA0, 8),
    "system_time": (0xFA8, 8),
    "comment": (0xFB0, 128),
    "system_up_time": (0x1030, 8),
    "mini_dump_fields": (0x1038, 4),
    "secondary_data_state": (0x103C, 4),
    "product_type": (0x1040, 4),
    "suite_mask": (0x1044, 4),
    "writer_status": (0x1048, 4),
    "unused1": (0x104C, 1),
    "kd_secondary_version": (0x104D, 1),
    "unused2": (0x104E, 2),
    "attributes": (0x1050, 4),
    "boot_id": (0x1054, 4),
}

HEADER32_SPEC = {
    "signature": (0x000, 4),
    "valid_dump": (0x004, 4),
    "major_version": (0x008, 4),
    "minor_version": (0x00C, 4),
    "directory_table_base": (0x010, 4),
    "pfn_database": (0x014, 4),
    "ps_loaded_module_list": (0x018, 4),
    "ps_active_process_head": (0x01C, 4),
    "machine_image_type": (0x020, 4),
    "number_processors": (0x024, 4),
    "bugcheck_code": (0x028, 4),
    "bugcheck_parameters": (0x02C, 16),
    "version_user": (0x03C, 32),
    "pae_enabled": (0x05C, 1),
    "kd_secondary_version": (0x05D, 1),
    "spare3": (0x05E, 2),
    "kd_debugger_data_block": (0x060, 4),
    "physical_memory_block": (0x064, 700),
    "context_record": (0x320, 1200),
    "exception": (0x7D0, 0x50),
    "comment": (0x820, 128),
    "attributes": (0x8A0, 4),
    "boot_id": (0x8A4, 4),
    "dump_type": (0xF88, 4),
    "mini_dump_fields": (0xF8C, 4),
    "secondary_data_state": (0xF90, 4),
    "product_type": (0xF94, 4),
    "suite_mask": (0xF98, 4),
    "writer_status": (0xF9C, 4),
    "required_dump_space": (0xFA0, 8),
    "system_up_time": (0xFB8, 8),
    "system_time": (0xFC0, 8),
}

AMD64_SPEC = {
    "p_home": (0x00, 0x30),
    "context_flags": (0x30, 4),
    "mxcsr": (0x34, 4),
    "cs": (0x38, 2),
    "ds": (0x3A, 2),
    "es": (0x3C, 2),
    "fs": (0x3E, 2),
    "gs": (0x40, 2),
    "ss": (0x42, 2),
    "efl": (0x44, 4),
    **{name: (0x48 + 8 * i, 8) for i, name in enumerate(["dr0", "dr1", "dr2", "dr3", "dr6", "dr7"])},
    **{name: (0x78 + 8 * i, 8) for i, name in enumerate(["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"])},
    **{f"r{n}": (0xB8 + 8 * (n - 8), 8) for n in range(8, 16)},
    "rip": (0xF8, 8),
    "flt_save": (0x100, 512),
    "vector_register": (0x300, 26 * 16),
    "vector_control": (0x4A0, 8),
    "debug_control": (0x4A8, 8),
    "last_branch_to_rip": (0x4B0, 8),
    "last_branch_from_rip": (0x4B8, 8),
    "last_exception_to_rip": (0x4C0, 8),
    "last_exception_from_rip": (0x4C8, 8),
}

X86_SPEC = {
    "context_flags": (0x00, 4),
    "dr0": (0x04, 4),
    "dr1": (0x08, 4),
    "dr2": (0x0C, 4),
    "dr3": (0x10, 4),
    "dr6": (0x14, 4),
    "dr7": (0x18, 4),
    "float_save": (0x1C, 0x70),
    "gs": (0x8C, 4),
    "fs": (0x90, 4),
    "es": (0x94, 4),
    "ds": (0x98, 4),
    "edi": (0x9C, 4),
    "esi": (0xA0, 4),
    "ebx": (0xA4, 4),
    "edx": (0xA8, 4),
    "ecx": (0xAC, 4),
    "eax": (0xB0, 4),
    "ebp": (0xB4, 4),
    "eip": (0xB8, 4),
    "cs": (0xBC, 4),
    "efl": (0xC0, 4),
    "esp": (0xC4, 4),
    "ss": (0xC8, 4),
    "extended_registers": (0xCC, 512),
}

ARM64_SPEC = {
    "context_flags": (0x00, 4),
    "cpsr": (0x04, 4),
    **{f"x{i}": (0x08 + 8 * i, 8) for i in range(29)},
    "fp": (0xF0, 8),
    "lr": (0xF8, 8),
    "sp": (0x100, 8),
    "pc": (0x108, 8),
    "v": (0x110, 32 * 16),
    "fpcr": (0x310, 4),
    "fpsr": (0x314, 4),
    "bcr": (0x318, 32),
    "bvr": (0x338, 64),
    "wcr": (0x378, 8),
    "wvr": (0x380, 16),
}

EXC64_SPEC = {
    "exception_code": (0x00, 4),
    "exception_flags": (0x04, 4),
    "exception_record": (0x08, 8),
    "exception_address": (0x10, 8),
    "number_parameters": (0x18, 4),
    "unused_alignment": (0x1C, 4),
    "exception_information": (0x20, 15 * 8),
}

EXC32_SPEC = {
    "exception_code": (0x00, 4),
    "exception_flags": (0x04, 4),
    "exception_record": (0x08, 4),
    "exception_address": (0x0C, 4),
    "number_parameters": (0x10, 4),
    "exception_information": (0x14, 15 * 4),
}

BITMAP_SPEC = {
    "signature": (0x00, 4),
    "valid_dump": (0x04, 4),
    "dump_options": (0x08, 4),
    "first_page": (0x20, 8),
    "total_present_pages": (0x28, 8),
    "bitmap_size": (0x30, 8),
}

CASES = [
    (hdr.HEADER64, HEADER64_SPEC, 0x2000),
    (hdr.HEADER32, HEADER32_SPEC, 0x1000),
    (ctx.CONTEXT_AMD64, AMD64_SPEC, 0x4D0),
    (ctx.CONTEXT_X86, X86_SPEC, 0x2CC),
    (ctx.CONTEXT_ARM64, ARM64_SPEC, 0x390),
    (ctx.EXCEPTION_RECORD64, EXC64_SPEC, 0x98),
    (ctx.EXCEPTION_RECORD32, EXC32_SPEC, 0x50),
    (hdr.BITMAP_HEADER, BITMAP_SPEC, 0x38),
]


@pytest.mark.parametrize(("layout", "spec", "size"), CASES, ids=[c[0].name for c in CASES])
def test_layout_matches_spec_table(layout: Layout, spec: dict[str, tuple[int, int]], size: int) -> None:
    assert layout.size == size
    got = {f.name: (f.offset, f.size) for f in layout.fields}
    assert got == spec


def test_physical_memory_descriptors_match_spec() -> None:
    assert (hdr.PHYSMEM_DESC64.offset_of("number_of_runs"), hdr.PHYSMEM_DESC64.offset_of("number_of_pages")) == (0, 8)
    assert hdr.PHYSMEM_DESC64.size == 0x10
    assert hdr.PHYSMEM_RUN64.size == 0x10
    assert (hdr.PHYSMEM_DESC32.offset_of("number_of_runs"), hdr.PHYSMEM_DESC32.offset_of("number_of_pages")) == (0, 4)
    assert hdr.PHYSMEM_DESC32.size == 8
    assert hdr.PHYSMEM_RUN32.size == 8
    # the run arrays fit the header slots: 43 × 16 + 16 ≤ 704, 86 × 8 + 8 ≤ 700
    assert hdr.PHYSMEM_MAX_RUNS64 == 43
    assert 0x10 + 43 * 0x10 <= 704
    assert hdr.PHYSMEM_MAX_RUNS32 == 86
    assert 0x8 + 86 * 0x8 <= 700


def test_rdmp_header_matches_spec() -> None:
    r = hdr.RDMP_HEADER
    assert [(f.name, f.offset, f.size) for f in r.fields] == [
        ("marker", 0x00, 4),
        ("signature", 0x04, 4),
        ("valid_dump", 0x08, 4),
        ("metadata_size", 0x10, 8),
        ("first_page_offset", 0x18, 8),
    ]
    assert hdr.RDMP_FULL_HEADER.offset_of("number_of_ranges") == 0x20
    assert hdr.RDMP_FULL_HEADER.offset_of("total_number_of_pages") == 0x28
    assert hdr.RDMP_RANGES_OFFSET == 0x30
    assert hdr.RDMP_RANGE.size == 0x10
