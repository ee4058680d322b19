"""PFN → file offset on hand-built dumps: run lists, bitmaps (rank index), RDMP ranges."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from kdump_handmade import PAGE, bitmap_bytes, bitmap_dump, full_dump, header, page_of, rdmp_dump

from dbgauto.errors import PageNotPresentError
from dbgauto.kdump.physmem import RANK_BLOCK_BYTES, BitmapMap, RangeMap, popcount
from dbgauto.kdump.reader import KernelDump


def _write(tmp_path: Path, data: bytes, name: str = "x.dmp") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("is_64bit", [True, False])
def test_full_dump_runs_map_each_page_to_its_place(tmp_path: Path, is_64bit: bool) -> None:
    runs = [(0x1, 3), (0x10, 2), (0x100, 1)]
    pfns = [p for b, c in runs for p in range(b, b + c)]
    path = _write(tmp_path, full_dump(runs, {p: page_of(p) for p in pfns}, is_64bit=is_64bit))
    with KernelDump.open(path) as d:
        hsize = 0x2000 if is_64bit else 0x1000
        for i, pfn in enumerate(pfns):  # stored run after run, no holes
            assert d.page_offset(pfn) == hsize + i * PAGE
            assert d.read_physical(pfn * PAGE, PAGE) == page_of(pfn)
        for absent in (0, 4, 0xF, 0x12, 0xFF, 0x101, 1 << 30):
            assert d.page_offset(absent) is None
        assert d.pages_present == 6
        assert d.pages_total == 6
        assert d.header.physical_memory_runs == tuple(runs)


def test_run_map_sorts_runs_but_keeps_file_order_offsets() -> None:
    m = RangeMap("t", [(0x50, 2, 0x2000), (0x10, 1, 0x4000)])
    assert m.lookup(0x10) == 0x4000
    assert m.lookup(0x51) == 0x3000
    assert m.lookup(0x52) is None
    assert m.lookup(0x0) is None


@pytest.mark.parametrize("is_64bit", [True, False])
@pytest.mark.parametrize("dump_type", [2, 5, 6])
def test_bitmap_dump_offsets_follow_popcount(tmp_path: Path, is_64bit: bool, dump_type: int) -> None:
    rng = random.Random(dump_type)
    bits = 5000  # not a multiple of 8 or 64: the tail is handled
    present = sorted(rng.sample(range(bits), 700))
    pages = {p: page_of(p) for p in present}
    sig = b"FDMP" if dump_type == 5 else b"SDMP"
    path = _write(tmp_path, bitmap_dump(pages, bits, dump_type=dump_type, signature=sig, is_64bit=is_64bit))
    hsize = 0x2000 if is_64bit else 0x1000
    first = hsize + 0x38 + (bits + 7) // 8
    with KernelDump.open(path) as d:
        assert isinstance(d.physical_map, BitmapMap)
        # opening counts the bitmap and builds the rank index in the same pass
        assert d.physical_map.index_bytes == 8 * -(-((bits + 7) // 8) // RANK_BLOCK_BYTES)
        assert d.pages_present == 700
        assert d.pages_total == bits
        for rank, pfn in enumerate(present):
            assert d.page_offset(pfn) == first + rank * PAGE
        for pfn in rng.sample(present, 50):
            assert d.read_physical(pfn * PAGE + 0x10, 0x20) == page_of(pfn)[0x10:0x30]
        absent = sorted(set(range(bits + 20)) - set(present))
        for pfn in absent[::37]:
            assert d.page_offset(pfn) is None
            with pytest.raises(PageNotPresentError):
                d.read_physical(pfn * PAGE, 1)


def test_rank_index_is_lazy_small_and_exact() -> None:
    rng = random.Random(7)
    bits = 64 * 1024 * 8 + 3  # several rank blocks
    present = sorted(rng.sample(range(bits), 20000))
    bm = memoryview(bytes(bitmap_bytes(present, bits)))
    m = BitmapMap("t", bm, bits, 0x10000, len(present))
    assert m.index_bytes == 0  # nothing built before the first lookup
    for rank, pfn in list(enumerate(present))[::97]:
        assert m.lookup(pfn) == 0x10000 + rank * PAGE
    assert 0 < m.index_bytes <= len(bm) // 4
    assert m.index_bytes == 8 * -(-len(bm) // RANK_BLOCK_BYTES)
    assert m.lookup(bits) is None
    assert m.lookup(bits + 1000) is None


def test_popcount_ignores_bits_past_the_bitmap_size() -> None:
    data = memoryview(b"\xff\xff")
    assert popcount(data, 16) == 16
    assert popcount(data, 13) == 13
    assert popcount(memoryview(bytes(3 << 20) + b"\x01"), (3 << 20) * 8 + 1) == 1
    ones = memoryview(b"\xff" * ((1 << 20) + 12345))  # all ones: the largest per-slice sums
    assert popcount(ones, len(ones) * 8) == len(ones) * 8
    rng = random.Random(3)
    data = bytes(rng.getrandbits(8) for _ in range(70000))
    assert popcount(memoryview(data), len(data) * 8 - 5) == int.from_bytes(data, "little").bit_count() - bin(
        data[-1] >> 3
    ).count("1")


@pytest.mark.parametrize("dump_type", [8, 9, 0xA])
def test_rdmp_range_dumps(tmp_path: Path, dump_type: int) -> None:
    ranges = [(0x20, 2), (0x5, 1), (0x400, 3)]
    pfns = [p for b, c in ranges for p in range(b, b + c)]
    path = _write(tmp_path, rdmp_dump(ranges, {p: page_of(p) for p in pfns}, dump_type=dump_type))
    with KernelDump.open(path) as d:
        assert d.pages_present == 6
        for pfn in pfns:
            assert d.read_physical(pfn * PAGE, PAGE) == page_of(pfn)
        assert d.page_offset(0x22) is None
        assert d.page_offset(0) is None


def test_read_physical_crosses_pages_and_zero_fills_on_request(tmp_path: Path) -> None:
    pages = {1: page_of(1), 2: page_of(2), 4: page_of(4)}
    path = _write(tmp_path, bitmap_dump(pages, 64))
    with KernelDump.open(path) as d:
        assert d.read_physical(0x1FF0, 0x20) == page_of(1)[-0x10:] + page_of(2)[:0x10]
        assert d.read_physical(0x1000, 2 * PAGE) == page_of(1) + page_of(2)
        with pytest.raises(PageNotPresentError) as ei:
            d.read_physical(0x2FF0, 0x20)  # page 3 is absent
        assert ei.value.address == 0x3000
        got = d.read_physical(0x2FF0, 0x1020, zero_fill=True)
        assert got == page_of(2)[-0x10:] + bytes(PAGE) + page_of(4)[:0x10]
        assert d.read_physical(0x1000, 0) == b""


@pytest.mark.parametrize("is_64bit", [True, False])
def test_xp_era_summary_dump_layout_is_recognised(tmp_path: Path, is_64bit: bool) -> None:
    """DumpType 2 with the old SUMMARY_DUMP sub-header: u32 HeaderSize/BitmapSize/Pages, RTL_BITMAP, bitmap."""
    present = [0, 3, 9]
    bits = 32
    hdr = header(is_64bit, 2)
    hsize = len(hdr)
    bitmap_at = hsize + (0x28 if is_64bit else 0x20)
    bm = bitmap_bytes(present, bits)
    first = bitmap_at + len(bm) + 4
    sub = bytearray(bitmap_at - hsize)
    sub[0:8] = b"SDMPDUMP"
    struct.pack_into("<IIIII", sub, 8, 0, first, bits, len(present), bits)  # Buffer pointer left 0
    data = bytes(hdr + sub + bm + bytes(4)) + b"".join(page_of(p) for p in present)
    path = _write(tmp_path, data)
    with KernelDump.open(path) as d:
        assert d.bitmap_info is not None
        assert d.bitmap_info.layout == "old-summary"
        for rank, pfn in enumerate(present):
            assert d.page_offset(pfn) == first + rank * PAGE
            assert d.read_physical(pfn * PAGE, 8) == page_of(pfn)[:8]


@pytest.mark.parametrize("dump_type", [8, 9, 0xA])
def test_rdmp_range_dumps_against_kdmp_parser(tmp_path: Path, dump_type: int) -> None:
    """A second reader of range dumps: kdmp-parser must find the same pages, and no others, in the same file."""
    kdmp_parser = pytest.importorskip("kdmp_parser")
    ranges = [(0x20, 2), (0x5, 1), (0x400, 3)]
    pfns = [p for b, c in ranges for p in range(b, b + c)]
    path = _write(tmp_path, rdmp_dump(ranges, {p: page_of(p) for p in pfns}, dump_type=dump_type))
    peer = kdmp_parser.KernelDumpParser(path)
    with KernelDump.open(path) as d:
        for pfn in pfns:
            assert bytes(peer.read_physical_page(pfn * PAGE)) == d.read_physical(pfn * PAGE, PAGE) == page_of(pfn)
        for pfn in (0x4, 0x22, 0x403):
            assert peer.read_physical_page(pfn * PAGE) is None
            assert d.page_offset(pfn) is None
