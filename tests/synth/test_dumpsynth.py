"""dumpsynth's own bytes, checked at the offsets dump-format.md and kd-structures.md §8 give (not via a reader)."""

from __future__ import annotations

import datetime as dt
import itertools
import struct
from pathlib import Path

import pytest
from dbgauto_testkit.dumpsynth import (
    PAGE_1G,
    PAGE_2M,
    PAGE_4M,
    AddressSpace,
    HeaderFields,
    PhysicalMemory,
    clustered_present_runs,
    pattern_page,
    write_bitmap_dump,
    write_dump,
    write_full_dump,
)

PAGE = 0x1000
FILLER32 = 0x45474150
FILLER64 = 0x4547415045474150


def u32(b: bytes, off: int) -> int:
    return struct.unpack_from("<I", b, off)[0]


def u64(b: bytes, off: int) -> int:
    return struct.unpack_from("<Q", b, off)[0]


def popcount_below(bitmap: bytes, bit: int) -> int:
    return sum(bin(b).count("1") for b in bitmap[: bit // 8]) + bin(bitmap[bit // 8] & ((1 << (bit % 8)) - 1)).count(
        "1"
    )


# -- headers ---------------------------------------------------------------------------------------------------


def test_header64_fields_sit_at_the_spec_offsets(tmp_path: Path) -> None:
    space = AddressSpace("x64")
    space.map(0xFFFFF80000001000, b"x")
    fields = HeaderFields(
        minor_version=22000,
        bugcheck_code=0x133,
        bugcheck_parameters=(1, 0x1E00, 0xFFFFF80000000340, 0),
        kd_debugger_data_block=0xFFFFF80011112222,
        comment="hello",
        attributes=0x10,
        system_time=dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
        context={"rip": 0xFFFFF80000001234, "rax": 0x1122334455667788},
    )
    info = write_bitmap_dump(tmp_path / "h.dmp", space, dump_type=6, fields=fields)
    raw = info.path.read_bytes()[:0x2000]
    assert raw[:8] == b"PAGEDU64"
    assert (u32(raw, 0x8), u32(raw, 0xC)) == (0xF, 22000)
    assert u64(raw, 0x10) == space.dtb
    assert u32(raw, 0x30) == 0x8664
    assert u32(raw, 0x38) == 0x133
    assert u32(raw, 0x3C) == FILLER32  # alignment padding keeps the filler
    assert struct.unpack_from("<4Q", raw, 0x40) == (1, 0x1E00, 0xFFFFF80000000340, 0)
    assert u64(raw, 0x80) == 0xFFFFF80011112222
    ctx = raw[0x348 : 0x348 + 0x4D0]
    assert u64(ctx, 0xF8) == 0xFFFFF80000001234  # Rip
    assert u64(ctx, 0x78) == 0x1122334455667788  # Rax
    assert u32(ctx, 0x34) == u32(ctx, 0x100 + 0x18) == 0x1F80  # MxCsr mirrored in FltSave
    assert struct.unpack_from("<H", ctx, 0x38)[0] == 0x10  # SegCs
    assert u32(raw, 0xF00) == 0x80000003  # ExceptionCode
    assert u64(raw, 0xF10) == 0xFFFFF80000001234  # ExceptionAddress = context pc
    assert u32(raw, 0xF98) == 6
    assert u64(raw, 0xFA0) == info.file_size == info.path.stat().st_size
    assert u64(raw, 0xFA8) == (int(dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC).timestamp()) + 11644473600) * 10**7
    assert raw[0xFB0 : 0xFB0 + 6] == b"hello\0"
    assert u64(raw, 0x1030) == 36_000_000_000
    assert u32(raw, 0x1040) == 1
    assert u32(raw, 0x1044) == 0x110
    assert u32(raw, 0x1048) == FILLER32  # WriterStatus not set
    assert u32(raw, 0x1050) == 0x10
    # the RAM run table (a copy of MmPhysicalMemoryBlock): NumberOfRuns u32, NumberOfPages u64 @8, runs @0x10
    runs = space.memory.ram_runs
    assert u32(raw, 0x88) == len(runs)
    assert u64(raw, 0x90) == sum(c for _, c in runs)
    assert [struct.unpack_from("<QQ", raw, 0x98 + 16 * i) for i in range(len(runs))] == runs


@pytest.mark.parametrize(("arch", "pae"), [("x86pae", 1), ("x86", 0)])
def test_header32_fields_sit_at_the_spec_offsets(tmp_path: Path, arch: str, pae: int) -> None:
    space = AddressSpace(arch)
    space.map(0x80001000, b"x")
    fields = HeaderFields(context={"eip": 0x80401234}, leave_filler=("pfn_database",))
    info = write_full_dump(tmp_path / "h.dmp", space, fields=fields)
    raw = info.path.read_bytes()[:0x1000]
    assert raw[:8] == b"PAGEDUMP"
    assert u32(raw, 0x10) == space.dtb
    assert u32(raw, 0x14) == FILLER32  # forced filler
    assert u32(raw, 0x20) == 0x14C
    assert u32(raw, 0x28) == 0xD1
    assert raw[0x5C] == pae
    assert u32(raw, 0x320 + 0xB8) == 0x80401234  # Eip in the x86 CONTEXT
    assert u32(raw, 0x7D0 + 0xC) == 0x80401234  # EXCEPTION_RECORD32.ExceptionAddress
    assert u32(raw, 0xF88) == 1
    assert u64(raw, 0xFA0) == info.file_size
    runs = space.memory.ram_runs
    assert (u32(raw, 0x64), u32(raw, 0x68)) == (len(runs), sum(c for _, c in runs))
    assert [struct.unpack_from("<II", raw, 0x6C + 8 * i) for i in range(len(runs))] == runs


def test_pae_dtb_points_at_a_32_byte_aligned_pdpt_inside_its_page() -> None:
    space = AddressSpace("x86pae", pdpt_offset=0x60)
    assert space.dtb % 32 == 0
    assert space.dtb % PAGE == 0x60
    space.map(0xC0001000, b"x")
    pdpte = u64(space.memory.read(space.dtb + 3 * 8, 8), 0)  # VA[31:30] = 3
    assert pdpte & 1
    assert pdpte & 0xFFE == 0


# -- page tables (raw entries) ---------------------------------------------------------------------------------


def test_x64_tables_use_four_levels_and_ps_bits() -> None:
    space = AddressSpace("x64", ram_bytes=4 << 30)
    va_4k, va_2m, va_1g = 0xFFFFF80000000000, 0xFFFFF80040000000, 0xFFFFF88000000000
    space.map(va_4k, b"a")
    space.map(va_2m, b"b", page_size=PAGE_2M)
    space.map(va_1g, b"c", page_size=PAGE_1G)
    mem = space.memory

    def entry(table: int, index: int) -> int:
        return u64(mem.read(table + index * 8, 8), 0)

    def walk(va: int) -> tuple[int, int]:  # → (leaf entry, level of leaf: 1 = PDPT, 2 = PD, 3 = PT)
        e = entry(space.dtb, (va >> 39) & 0x1FF)
        for level, shift in enumerate((30, 21, 12), start=1):
            assert e & 1
            e = entry(e & 0x000FFFFFFFFFF000, (va >> shift) & 0x1FF)
            if e & 0x80 or shift == 12:
                return e, level
        raise AssertionError

    e, level = walk(va_4k)
    assert level == 3
    assert e & 0xFFFFFFFFF000 == space.translate(va_4k)
    e, level = walk(va_2m)
    assert level == 2
    assert e & 0x80
    assert e & 0xFFFFFFE00000 == space.translate(va_2m)
    e, level = walk(va_1g)
    assert level == 1
    assert e & 0x80
    assert e & 0xFFFFC0000000 == space.translate(va_1g)
    assert space.translate(va_1g) % PAGE_1G == 0
    assert space.translate(va_2m) % PAGE_2M == 0


def test_non_pae_uses_4_byte_entries_and_4mib_pages() -> None:
    space = AddressSpace("x86")
    space.map(0x80400000, b"big", page_size=PAGE_4M)
    pde = u32(space.memory.read(space.dtb + (0x80400000 >> 22) * 4, 4), 0)
    assert pde & 0x81 == 0x81
    assert pde & 0xFFC00000 == space.translate(0x80400000)
    with pytest.raises(ValueError, match="no 0x200000-byte pages"):
        space.map(0x90000000, b"x", page_size=PAGE_2M)


def test_large_page_frames_are_all_present_and_read_back() -> None:
    space = AddressSpace("x64", placement="scattered", seed=4)
    pa = space.map(0xFFFFF80000200000 + 0x1234, b"data", page_size=PAGE_2M)
    base_pfn = (pa - 0x1234) // PAGE
    assert all(space.memory.is_present(base_pfn + i) for i in (0, 1, 255, 511))
    assert space.read_virtual(0xFFFFF80000200000 + 0x1234, 4) == b"data"
    assert space.read_virtual(0xFFFFF80000200000 + 0x100000, 4) == bytes(4)


def test_scattered_placement_is_seeded() -> None:
    def frames(placement: str, seed: int = 0) -> list[int]:
        space = AddressSpace("x64", placement=placement, seed=seed)
        return [space.map(0xFFFFF80000000000 + i * PAGE, b"z") for i in range(8)]

    assert frames("scattered", 1) == frames("scattered", 1)
    assert frames("scattered", 1) != frames("scattered", 2)
    sequential = frames("sequential")
    assert all(b - a == PAGE for a, b in itertools.pairwise(sequential[1:]))  # bump allocation (after the PT)
    scattered = frames("scattered", 1)
    assert len(set(scattered)) == 8
    assert sum(b - a == PAGE for a, b in itertools.pairwise(scattered)) <= 1


def test_address_space_rejects_bad_requests() -> None:
    space = AddressSpace("x64")
    with pytest.raises(ValueError, match="canonical"):
        space.map(0x0000900000000000, b"x")
    space.map(0xFFFFF80000000000, b"x")
    with pytest.raises(ValueError, match="another page size"):
        space.map(0xFFFFF80000000000, b"x", page_size=PAGE_2M)
    with pytest.raises(ValueError, match="page table"):
        space.write_physical(space.dtb, b"oops")
    with pytest.raises(ValueError, match="not mapped"):
        space.write_virtual(0xFFFFF80000100000, b"x")
    with pytest.raises(ValueError, match="cannot be mapped"):
        AddressSpace("x86", ram_bytes=8 << 30)


# -- file layouts ----------------------------------------------------------------------------------------------


def test_full_dump_stores_runs_back_to_back(tmp_path: Path) -> None:
    mem = PhysicalMemory([(0x10, 4), (0x100, 8)])
    mem.write(0x11 * PAGE, b"in-run-1")
    mem.write(0x105 * PAGE + 0x10, b"in-run-2")
    info = write_full_dump(tmp_path / "f.dmp", mem, arch="x64", fields=HeaderFields(context=None))
    raw = info.path.read_bytes()
    assert len(raw) == 0x2000 + 12 * PAGE == u64(raw, 0xFA0)
    assert raw[0x2000 + 1 * PAGE :][:8] == b"in-run-1"  # second page of run 0
    assert raw[0x2000 + (4 + 5) * PAGE + 0x10 :][:8] == b"in-run-2"  # after run 0's 4 pages
    assert u32(raw, 0x348) == FILLER32  # context=None leaves the filler
    assert info.file_offset(0x105) == 0x2000 + 9 * PAGE
    assert info.file_offset(0x20) is None


def test_full_dump_refuses_pages_outside_its_runs(tmp_path: Path) -> None:
    mem = PhysicalMemory([(0x10, 4)])
    mem.write(0x20 * PAGE, b"lost")
    with pytest.raises(ValueError, match="outside the dump's runs"):
        write_full_dump(tmp_path / "f.dmp", mem, arch="x64")
    assert list(tmp_path.iterdir()) == []  # no partial or temporary file left behind


def test_full_dump_run_limits(tmp_path: Path) -> None:
    runs = [(i * 4, 1) for i in range(44)]
    with pytest.raises(ValueError, match="43"):
        write_full_dump(tmp_path / "f.dmp", PhysicalMemory(runs), arch="x64")
    write_full_dump(tmp_path / "ok.dmp", PhysicalMemory(runs[:43]), arch="x64")  # 43 runs just fit
    write_full_dump(tmp_path / "ok32.dmp", PhysicalMemory([(i * 4, 1) for i in range(86)]), arch="x86")


@pytest.mark.parametrize(
    ("arch", "dump_type", "sig", "hdr"), [("x64", 6, b"SDMP", 0x2000), ("x86pae", 5, b"FDMP", 0x1000)]
)
def test_bitmap_dump_layout(tmp_path: Path, arch: str, dump_type: int, sig: bytes, hdr: int) -> None:
    mem = PhysicalMemory(ram_pages=1000)
    mem.add_present(10, 5)
    mem.add_present(700, 3)
    mem.write(12 * PAGE, b"twelve")
    mem.write(701 * PAGE + 0xFF8, b"seven-o-one")  # crosses into page 702
    info = write_bitmap_dump(tmp_path / "b.dmp", mem, arch=arch, dump_type=dump_type)
    raw = info.path.read_bytes()
    sub = raw[hdr:]
    assert sub[:8] == sig + b"DUMP"
    first, pages, bits = struct.unpack_from("<QQQ", sub, 0x20)
    assert bits == 1024
    assert pages == 8
    bitmap = sub[0x38 : 0x38 + bits // 8]
    assert first == hdr + 0x38 + len(bitmap)
    assert sum(bin(b).count("1") for b in bitmap) == pages
    assert [i for i in range(bits) if bitmap[i // 8] >> (i % 8) & 1] == [10, 11, 12, 13, 14, 700, 701, 702]
    assert len(raw) == first + pages * PAGE == u64(raw, 0xFA0)  # RequiredDumpSpace: same offset in both headers
    assert raw[first + popcount_below(bitmap, 12) * PAGE :][:6] == b"twelve"
    at = first + popcount_below(bitmap, 701) * PAGE + 0xFF8
    assert raw[at : at + 11] == b"seven-o-one"


def test_bitmap_dump_first_page_alignment_and_overrides(tmp_path: Path) -> None:
    mem = PhysicalMemory(ram_pages=64)
    mem.write(3 * PAGE, b"x")
    info = write_bitmap_dump(
        tmp_path / "b.dmp", mem, arch="x64", dump_type=5, signature=b"SDMP", align_first_page=True, bitmap_bits=128
    )
    raw = info.path.read_bytes()
    assert raw[0x2000:0x2004] == b"SDMP"
    assert u32(raw, 0xF98) == 5
    assert u64(raw, 0x2020) == 0x3000
    assert u64(raw, 0x2030) == 128
    assert raw[0x3000] == ord("x")


def test_overwrite_is_explicit(tmp_path: Path) -> None:
    mem = PhysicalMemory(ram_pages=16)
    mem.write(0, b"a")
    write_dump(tmp_path / "o.dmp", mem, 6, arch="x64")
    with pytest.raises(FileExistsError):
        write_dump(tmp_path / "o.dmp", mem, 6, arch="x64")
    write_dump(tmp_path / "o.dmp", mem, 1, arch="x64", overwrite=True)
    assert u32(Path(tmp_path / "o.dmp").read_bytes(), 0xF98) == 1


# -- huge and sparse -------------------------------------------------------------------------------------------


def test_clustered_present_runs_are_exact_disjoint_and_seeded() -> None:
    total = 1 << 20
    runs = clustered_present_runs(total, 0.25, seed=3, cluster_pages=64)
    assert sum(c for _, c in runs) == total // 4
    assert all(a[0] + a[1] < b[0] for a, b in itertools.pairwise(runs))  # sorted, merged, gaps
    assert runs[0][0] >= 0
    assert runs[-1][0] + runs[-1][1] <= total
    assert 1000 < len(runs) < 8192  # clusters, not single pages nor one block
    assert runs == clustered_present_runs(total, 0.25, seed=3, cluster_pages=64)
    assert runs != clustered_present_runs(total, 0.25, seed=4, cluster_pages=64)
    assert clustered_present_runs(total, 0.0) == []
    assert clustered_present_runs(total, 1.0, first_pfn=16) == [(16, total - 16)]


def test_large_sparse_bitmap_dump_is_cheap(tmp_path: Path) -> None:
    total = (16 << 30) // PAGE  # a 16 GiB machine
    mem = PhysicalMemory(ram_pages=total)
    runs = clustered_present_runs(total, 0.25, seed=1)
    mem.add_present_runs(runs)
    stamped = [base for base, _ in runs[::500]]
    for pfn in stamped:
        mem.write(pfn * PAGE, pattern_page(pfn))
    info = write_bitmap_dump(tmp_path / "big.dmp", mem, arch="x64")
    st = info.path.stat()
    assert st.st_size == info.file_size == 0x2000 + 0x38 + total // 8 + (total // 4) * PAGE  # 4 GiB apparent
    assert st.st_blocks * 512 < 8 << 20  # bitmap (512 KiB) + stamped pages, the rest holes
    with info.path.open("rb") as fh:
        for pfn in stamped[:20]:
            fh.seek(info.file_offset(pfn))  # type: ignore[arg-type]
            assert fh.read(PAGE) == pattern_page(pfn)


def test_chosen_dtb_and_sibling_address_spaces() -> None:
    space = AddressSpace("x64", dtb=0x1AD002)
    assert space.dtb == 0x1AD002
    assert space.top_table == 0x1AD000
    space.map(0xFFFFF80000000000, b"shared")
    process = space.sibling()
    assert process.top_table != space.top_table
    pml4e = space.memory.read(space.top_table + 0x1F0 * 8, 8)  # PML4 index of 0xFFFFF80000000000
    assert process.memory.read(process.top_table + 0x1F0 * 8, 8) == pml4e != bytes(8)
    assert process.read_virtual(0xFFFFF80000000000, 6) == b"shared"
    pa = process.map(0x10000, b"mine")
    assert space.translate(0x10000) is None
    assert space.map(0x10000, b"yours") != pa  # one allocator: the frames never collide
    with pytest.raises(ValueError, match="not free"):
        space.sibling(dtb=0x1AD000)
    with pytest.raises(ValueError, match="not free"):
        AddressSpace("x64", dtb=0xA0000)  # the legacy hole is not RAM


def test_nx_and_pat_bits_are_written_into_leaf_entries() -> None:
    space = AddressSpace("x86pae", nx=True, pat_large=True)
    space.map(0x80001000, b"small")
    space.map(0x81000000, b"large", page_size=PAGE_2M)
    pd = u64(space.memory.read(space.top_table + 2 * 8, 8), 0) & 0xFFFFFF000  # PDPTE 2 → page directory
    pde_large = u64(space.memory.read(pd + ((0x81000000 >> 21) & 0x1FF) * 8, 8), 0)
    assert pde_large >> 63 == 1
    assert pde_large & 0x1080 == 0x1080  # PAT and PS
    assert pde_large & 0xFFFFFE00000 == space.translate(0x81000000)
    pde_small = u64(space.memory.read(pd + ((0x80001000 >> 21) & 0x1FF) * 8, 8), 0)
    assert pde_small >> 63 == 0  # tables are not execute-disabled, only leaves
    pte = u64(space.memory.read((pde_small & 0xFFFFFF000) + 1 * 8, 8), 0)
    assert pte >> 63 == 1
    assert pte & 0x1000 == space.translate(0x80001000) & 0x1000  # bit 12 is an address bit in a 4 KiB PTE


def test_full_dump_accepts_present_pages_straddling_adjacent_runs(tmp_path: Path) -> None:
    mem = PhysicalMemory([(0, 8), (8, 8)])  # PhysicalMemory merges them; the dump keeps two runs
    mem.write(7 * PAGE + 0xFFC, b"straddle")
    info = write_full_dump(tmp_path / "f.dmp", mem, arch="x86", runs=[(0, 8), (8, 8)])
    raw = info.path.read_bytes()
    assert u32(raw, 0x64) == 2
    assert raw[0x1000 + 8 * PAGE - 4 : 0x1000 + 8 * PAGE + 4] == b"straddle"


@pytest.mark.parametrize("dump_type", [1, 6])
def test_dump_info_locates_stored_pages(tmp_path: Path, dump_type: int) -> None:
    mem = PhysicalMemory([(0x100, 16), (0x10, 4)])
    for pfn in (0x10, 0x13, 0x100, 0x10F):
        mem.write(pfn * PAGE, pattern_page(pfn))
    options = {"runs": [(0x100, 16), (0x10, 4)]} if dump_type == 1 else {}
    info = write_dump(tmp_path / "i.dmp", mem, dump_type, arch="x64", **options)
    raw = info.path.read_bytes()
    stored = [info.pfn_at(i) for i in range(info.stored_pages)]
    expected = [*range(0x100, 0x110), *range(0x10, 0x14)] if dump_type == 1 else [0x10, 0x13, 0x100, 0x10F]
    assert stored == expected  # file order: run after run (type 1), ascending PFN (bitmap)
    for pfn in (0x10, 0x13, 0x100, 0x10F):
        off = info.file_offset(pfn)
        assert off is not None
        assert raw[off : off + PAGE] == pattern_page(pfn)
    assert info.file_offset(0x14) is None
    sample = info.sample_stored_pfns(3, seed=1)
    assert len(set(sample)) == 3
    assert all(info.file_offset(p) is not None for p in sample)


def test_frames_reserved_by_an_explicit_pa_are_never_handed_out_again() -> None:
    space = AddressSpace("x64", ram_bytes=16 << 20)
    raw = space.alloc_frames(1)  # one frame in use, then a large page laid over it and its neighbours
    base = raw - raw % PAGE_2M + PAGE_2M  # the next 2 MiB block, entirely fresh
    space.write_physical(base + 0x3000, b"raw inside")
    space.map(0xFFFFF80000200000, size=PAGE_2M, page_size=PAGE_2M, pa=base)
    taken = {space.alloc_frames(1) // PAGE for _ in range(700)}
    assert not taken & set(range(base // PAGE, base // PAGE + 512))
