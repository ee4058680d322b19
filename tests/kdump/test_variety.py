"""Dump varieties: what the file proves, and where it can only estimate."""

from __future__ import annotations

from pathlib import Path

import pytest
from kdump_handmade import bitmap_dump, full_dump, header, page_of, put_runs

from dbgauto.kdump.reader import KernelDump
from dbgauto.kdump.variety import classify


@pytest.mark.parametrize(
    ("dump_type", "name", "certain"),
    [
        (4, "Small Memory Dump", True),
        (6, "Kernel or Automatic Memory Dump", False),
        (2, "Kernel or Automatic Memory Dump", False),
        (1, "Complete Memory Dump", True),
        (3, "Header-only Dump", True),
        (8, "Kernel Range Dump", True),
        (9, "Kernel and User Range Dump", True),
        (0xA, "Complete Range Dump", True),
    ],
)
def test_variety_by_dump_type(dump_type: int, name: str, certain: bool) -> None:
    v = classify(dump_type)
    assert (v.name, v.certain) == (name, certain)
    assert v.dump_type_meaning
    assert v.explanation


def test_kernel_and_automatic_are_not_told_apart() -> None:
    assert "identical" in classify(6).explanation


def test_type5_complete_vs_active_uses_run_table_pages_first() -> None:
    complete = classify(5, pages_present=980, run_table_pages=1000, bitmap_bits=4000)
    active = classify(5, pages_present=400, run_table_pages=1000, bitmap_bits=4000)
    assert complete.name == "Complete Memory Dump"
    assert not complete.certain
    assert active.name == "Active Memory Dump"
    assert not active.certain
    assert "heuristic" in active.explanation
    assert "run table" in active.explanation


def test_type5_falls_back_to_bitmap_size_and_honours_filter_bit() -> None:
    assert classify(5, pages_present=3900, bitmap_bits=4000).name == "Complete Memory Dump"
    assert classify(5, pages_present=1000, bitmap_bits=4000).name == "Active Memory Dump"
    filtered = classify(5, pages_present=3900, bitmap_bits=4000, attributes=1 << 6)
    assert filtered.name == "Active Memory Dump"
    assert "FilterDumpFile" in filtered.explanation


def test_unknown_dump_type_is_not_certain() -> None:
    v = classify(0x77)
    assert v.name == "Unknown"
    assert not v.certain


def test_opened_dumps_carry_their_variety(tmp_path: Path) -> None:
    p5 = tmp_path / "five.dmp"
    # PAGE-filled run table: the estimate uses the bitmap size (4 of 64 bits present → Active)
    p5.write_bytes(bitmap_dump({i: page_of(i) for i in range(4)}, 64, dump_type=5, signature=b"FDMP"))
    with KernelDump.open(p5) as d:
        assert d.variety.name == "Active Memory Dump"
        assert not d.variety.certain
    p1 = tmp_path / "one.dmp"
    p1.write_bytes(full_dump([(0, 2)], {}))
    with KernelDump.open(p1) as d:
        assert d.variety.name == "Complete Memory Dump"
        assert d.variety.certain
    p3 = tmp_path / "three.dmp"
    h = header(True, 3)
    put_runs(h, True, [(0, 16)])
    p3.write_bytes(bytes(h))
    with KernelDump.open(p3) as d:
        assert d.variety.name == "Header-only Dump"
        assert not d.has_physical_memory


def test_live_kernel_dump_named_from_the_header() -> None:
    """dump-format.md §14: live dumps carry Attributes bit 4 (LiveDumpGeneratedDump) or stop code 0x161."""
    by_attribute = classify(6, attributes=1 << 4)
    assert (by_attribute.name, by_attribute.certain) == ("Live Kernel Memory Dump", True)
    assert "LiveDumpGeneratedDump" in by_attribute.explanation
    by_stop_code = classify(6, bugcheck_code=0x161)
    assert by_stop_code.name == "Live Kernel Memory Dump"
    assert "0x161" in by_stop_code.explanation
    assert classify(6, attributes=1 << 6, bugcheck_code=0xD1).name == "Kernel or Automatic Memory Dump"


def test_live_kernel_dump_file(tmp_path) -> None:
    from kdump_handmade import bitmap_dump, page_of

    from dbgauto.kdump.reader import KernelDump

    path = tmp_path / "live.dmp"
    path.write_bytes(bitmap_dump({1: page_of(1)}, 64, bugcheck_code=0x161))
    with KernelDump.open(path) as d:
        assert d.variety.name == "Live Kernel Memory Dump"
