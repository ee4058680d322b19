"""Bad input: every malformed file gives a typed error that names the file and the reason."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from kdump_handmade import bitmap_dump, full_dump, header, page_of, put_runs, rdmp_dump

from dbgauto import errors
from dbgauto.errors import (
    BadSignatureError,
    BitmapCountMismatchError,
    DbgautoError,
    DumpFormatError,
    DumpNotFoundError,
    RangeHeaderError,
    RunListError,
    RunListOverflowError,
    TruncatedDumpError,
    UnsupportedDumpTypeError,
)
from dbgauto.kdump import physmem
from dbgauto.kdump.reader import KernelDump


def _open_fails(tmp_path: Path, data: bytes, exc: type[DbgautoError], match: str) -> DbgautoError:
    p = tmp_path / "bad.dmp"
    p.write_bytes(data)
    with pytest.raises(exc, match=match) as ei:
        KernelDump.open(p)
    assert str(p) in str(ei.value)  # names the file
    return ei.value


def test_physical_memory_errors_are_one_tree_importable_from_physmem() -> None:
    for name in ("PhysicalMemoryError", "BitmapCountMismatchError", "RunListError", "RunListOverflowError"):
        assert getattr(physmem, name) is getattr(errors, name)
        assert issubclass(getattr(errors, name), DumpFormatError)
    assert physmem.RangeHeaderError is RangeHeaderError


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DumpNotFoundError, match="no such file"):
        KernelDump.open(tmp_path / "nope.dmp")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(DumpFormatError, match="is a directory"):
        KernelDump.open(tmp_path)


def test_zero_length(tmp_path: Path) -> None:
    _open_fails(tmp_path, b"", TruncatedDumpError, "empty file")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"hello, this is not a dump at all" * 300, "not a kernel dump"),
        (b"MDMP\x93\xa7" + bytes(0x3000), "user-mode minidump"),
        (b"PAGEXXXX" + bytes(0x3000), "expected b'DUMP' or b'DU64'"),
        (b"\0" * 0x3000, "not a kernel dump"),
    ],
)
def test_not_a_dump(tmp_path: Path, data: bytes, match: str) -> None:
    _open_fails(tmp_path, data, BadSignatureError, match)


@pytest.mark.parametrize("data", [b"PAGEDU", b"PAGEDU64" + bytes(100), b"PAGEDUMP" + bytes(0xFF0)])
def test_truncated_header(tmp_path: Path, data: bytes) -> None:
    _open_fails(tmp_path, data, TruncatedDumpError, "truncated|ends inside")


def test_bitmap_claims_more_pages_than_the_file_holds(tmp_path: Path) -> None:
    data = bitmap_dump({i: page_of(i) for i in range(10)}, 64)
    _open_fails(tmp_path, data[: -2 * 0x1000], TruncatedDumpError, "claims 0xa pages")


def test_bitmap_larger_than_the_file(tmp_path: Path) -> None:
    data = bytearray(bitmap_dump({1: page_of(1)}, 64))
    struct.pack_into("<Q", data, 0x2030, 1 << 36)  # 2^36 bits = 8 GiB of bitmap
    struct.pack_into("<Q", data, 0x2020, (1 << 33) + 0x3000)  # first page after it
    _open_fails(tmp_path, bytes(data), TruncatedDumpError, "bitmap")


def test_bitmap_size_beyond_physical_addresses(tmp_path: Path) -> None:
    data = bytearray(bitmap_dump({1: page_of(1)}, 64))
    struct.pack_into("<Q", data, 0x2030, 1 << 63)
    _open_fails(tmp_path, bytes(data), RunListOverflowError, "beyond 52-bit")


def test_popcount_differs_from_total_present_pages(tmp_path: Path) -> None:
    data = bitmap_dump({1: page_of(1), 2: page_of(2)}, 64, present_override=1)
    _open_fails(tmp_path, data, BitmapCountMismatchError, "2 bits set|0x2 bits set")


def test_first_page_inside_the_bitmap(tmp_path: Path) -> None:
    data = bytearray(bitmap_dump({1: page_of(1)}, 64))
    struct.pack_into("<Q", data, 0x2020, 0x2010)
    _open_fails(tmp_path, bytes(data), DumpFormatError, "inside the bitmap")


def test_bad_bitmap_signature(tmp_path: Path) -> None:
    _open_fails(tmp_path, bitmap_dump({1: page_of(1)}, 64, signature=b"XDMP"), BadSignatureError, "SDMP/FDMP")


def test_run_list_overflow(tmp_path: Path) -> None:
    h = header(True, 1)
    put_runs(h, True, [(1 << 62, 1 << 62)])
    _open_fails(tmp_path, bytes(h), RunListOverflowError, "52-bit")


def test_run_list_past_end_of_file(tmp_path: Path) -> None:
    data = full_dump([(0, 4)], {})
    _open_fails(tmp_path, data[:-0x1000], TruncatedDumpError, "run table")


def test_run_list_sum_differs_from_number_of_pages(tmp_path: Path) -> None:
    h = header(True, 1)
    put_runs(h, True, [(0, 2)], number_of_pages=5)
    _open_fails(tmp_path, bytes(h) + bytes(0x2000), RunListError, "NumberOfPages")


def test_overlapping_runs(tmp_path: Path) -> None:
    _open_fails(tmp_path, full_dump([(0, 4), (2, 4)], {}), RunListError, "overlaps")


def test_too_many_runs(tmp_path: Path) -> None:
    h = header(True, 1)
    struct.pack_into("<IIQ", h, 0x88, 5000, 0, 5000)
    err = _open_fails(tmp_path, bytes(h), RunListError, "claims 5000 runs")
    assert err.code == "run_list"


def test_full_dump_without_run_table(tmp_path: Path) -> None:
    _open_fails(tmp_path, bytes(header(True, 1)), RunListError, "run table")


@pytest.mark.parametrize("dump_type", [0, 7, 0x33, 0xFFFFFFFF])
def test_unknown_or_fileless_dump_types(tmp_path: Path, dump_type: int) -> None:
    err = _open_fails(tmp_path, bytes(header(True, dump_type)), UnsupportedDumpTypeError, "unsupported DumpType")
    assert isinstance(err, DumpFormatError)


def test_rdmp_metadata_inconsistent(tmp_path: Path) -> None:
    data = bytearray(rdmp_dump([(1, 1)], {}))
    struct.pack_into("<Q", data, 0x2010, 0x12345)
    _open_fails(tmp_path, bytes(data), RangeHeaderError, "MetadataSize")


def test_rdmp_in_a_32_bit_header(tmp_path: Path) -> None:
    _open_fails(tmp_path, bytes(header(False, 8)) + bytes(0x100), RangeHeaderError, "64-bit only")


def test_rdmp_total_pages_disagree(tmp_path: Path) -> None:
    data = bytearray(rdmp_dump([(1, 2)], {}, dump_type=0xA))
    struct.pack_into("<Q", data, 0x2028, 5)
    _open_fails(tmp_path, bytes(data), RunListError, "TotalNumberOfPages")
