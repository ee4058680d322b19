"""Damaged small dumps: typed errors naming file, section and offset; warnings for merely damaged sections."""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from dbgauto_testkit.triage_handmade import build_handmade
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbgauto.errors import DbgautoError, TriageFormatError
from dbgauto.kdump.structs.triage import DUMP_DRIVER_ENTRY64
from dbgauto.kdump.triage import TriageDump
from dbgauto.kernel.smalldump import kernel_view, parts_from_triage

T = 0x2000  # TRIAGE_DUMP64

def _kv(tri: Any) -> dict[str, Any]:
    """What the kernel layer establishes from the small dump's copies (addresses, identity, stack scan)."""
    return kernel_view(parts_from_triage(tri))



def parse(data: bytes | bytearray, path: str = "bad.dmp") -> TriageDump:
    return TriageDump.parse_buffer(bytes(data), path=path, is_64bit=True)


def put32(data: bytearray, off: int, value: int) -> bytearray:
    struct.pack_into("<I", data, off, value)
    return data


def handmade() -> tuple[bytearray, dict[str, int]]:
    hm = build_handmade()
    return bytearray(hm.data), hm.offsets


def expect_error(data: bytes | bytearray, section: str, offset: int | None) -> TriageFormatError:
    with pytest.raises(TriageFormatError) as ei:
        parse(data, "/dumps/bad.dmp")
    err = ei.value
    assert err.section == section
    assert err.offset == offset
    assert err.path == Path("/dumps/bad.dmp")
    assert str(err).startswith("/dumps/bad.dmp")
    assert section in str(err)
    return err


def test_header_truncated() -> None:
    data, _ = handmade()
    expect_error(data[:0x1800], "header", 0)


def test_triage_header_past_eof() -> None:
    data, _ = handmade()
    expect_error(data[: T + 0x40], "triage_header", T)


def test_not_a_small_dump() -> None:
    data, _ = handmade()
    expect_error(put32(data, 0xF98, 6), "header", 0)


def test_section_offset_past_end() -> None:
    data, _ = handmade()
    put32(data, T + 0x1C, len(data) + 0x100)  # PrcbOffset
    expect_error(data, "prcb", len(data) + 0x100)


def test_truncated_section() -> None:
    """The call stack claims more bytes than remain after its offset."""
    data, off = handmade()
    put32(data, T + 0x2C, len(data))  # SizeOfCallStack
    expect_error(data, "call_stack", off["stack"])


def test_driver_count_needs_more_bytes_than_the_file() -> None:
    data, off = handmade()
    put32(data, T + 0x34, 0xFFFFFFFF)
    err = expect_error(data, "driver_list", off["drivers"])
    assert "DriverCount 4294967295" in str(err)


def test_data_blocks_count_needs_more_bytes_than_the_file() -> None:
    data, off = handmade()
    put32(data, T + 0x7C, 0x10000000)
    expect_error(data, "data_blocks", off["blocks"])


def test_unloaded_count_needs_more_bytes_than_the_file() -> None:
    data, off = handmade()
    struct.pack_into("<Q", data, off["unloaded"], 1 << 40)
    expect_error(data, "unloaded_drivers", off["unloaded"])


def test_missing_trgd() -> None:
    data, off = handmade()
    data[off["valid"] : off["valid"] + 4] = b"\0\0\0\0"
    expect_error(data, "valid_marker", off["valid"])


def test_valid_offset_past_end() -> None:
    data, _ = handmade()
    put32(data, T + 0x08, len(data) + 8)
    expect_error(data, "valid_marker", len(data) + 8)


def test_real_file_truncated(triage_x64_path: Path) -> None:
    """Cut in the middle of the data-block payloads: the TRGD marker is gone; the error says where it should be."""
    data = triage_x64_path.read_bytes()[:0x100000]
    expect_error(data, "valid_marker", 0x13A288)


def test_real_file_without_secondary_data_reads(triage_x64_path: Path) -> None:
    data = triage_x64_path.read_bytes()[:0x13A28C]
    tri = parse(data)
    assert tri.blobs == []
    assert tri.warnings == []
    assert len(tri.drivers) == 151


def test_overlapping_sections_warn_and_still_read() -> None:
    data, off = handmade()
    put32(data, T + 0x24, off["process"] + 0x10)  # ThreadOffset inside the EPROCESS copy
    tri = parse(data)
    assert any("overlap" in w and "process" in w for w in tri.warnings)
    assert len(tri.drivers) == 2
    assert _kv(tri)["pid"] is None  # the thread copy is now garbage: no Cid match, so no ids (rather than wrong ones)


def test_string_without_terminator_warns() -> None:
    data, off = handmade()
    n = struct.unpack_from("<I", data, off["pool"])[0]
    data[off["pool"] + 4 + 2 * n : off["pool"] + 6 + 2 * n] = b"X\0"
    tri = parse(data)
    assert tri.drivers[0].name == "\\SystemRoot\\system32\\ntoskrnl.exe"
    assert any("no NUL terminator" in w for w in tri.warnings)


def test_pool_without_terminators_or_room_warns() -> None:
    """A length running past the pool: the name is unknown, the next driver still reads."""
    data, off = handmade()
    put32(data, off["pool"], 0x7FFFFFFF)
    tri = parse(data)
    assert tri.drivers[0].name is None
    assert tri.drivers[0].base_name.startswith("driver@")
    assert tri.drivers[1].name == "\\x\\d.sys"
    assert any("runs past the pool end" in w for w in tri.warnings)


def test_name_offset_outside_pool_warns() -> None:
    data, off = handmade()
    put32(data, off["drivers"] + 0x90, 0x10)
    tri = parse(data)
    assert tri.drivers[1].name is None
    assert any("outside the string pool" in w for w in tri.warnings)


def test_data_block_payload_past_end_is_dropped_with_warning() -> None:
    data, off = handmade()
    put32(data, off["blocks"] + 16 * 2 + 8, len(data) - 1)  # third block's Offset; size 3
    tri = parse(data)
    assert len(tri.data_blocks) == 2
    assert any("past the end of the file" in w for w in tri.warnings)


def test_bad_kdbg_tag_warns() -> None:
    data, off = handmade()
    data[off["kdbg"] + 0x10 : off["kdbg"] + 0x14] = b"XXXX"
    tri = parse(data)
    assert tri.kdbg is not None
    assert not tri.kdbg.owner_tag_ok
    assert any("OwnerTag" in w for w in tri.warnings)
    assert len(tri.drivers) == 2


def test_broken_blob_chain_warns() -> None:
    data, off = handmade()
    put32(data, off["blob"] + 0x10 + 0x14, 0x7FFFFFFF)  # DataSize of the first record
    tri = parse(data)
    assert tri.blobs == []
    assert tri.blob_file_header is not None
    assert any("blob" in w for w in tri.warnings)


def test_trailing_bytes_that_are_not_dumpblob_warn() -> None:
    data, off = handmade()
    data[off["blob"] : off["blob"] + 8] = b"Whatever"
    tri = parse(data)
    assert tri.blob_file_header is None
    assert any("not DumpBlob" in w for w in tri.warnings)


def test_unknown_machine_context_warns() -> None:
    data, _ = handmade()
    put32(data, 0x30, 0x0200)  # IA64: no CONTEXT layout
    tri = parse(data)
    assert tri.context is None
    assert any("no CONTEXT layout" in w for w in tri.warnings)


def test_broken_driver_offset_not_an_entry_warns() -> None:
    data, off = handmade()
    put32(data, T + 0x40, off["drivers"] + 3)
    tri = parse(data)
    assert tri.broken_driver is None
    assert any("broken_driver" in w for w in tri.warnings)


# --- mutation (hypothesis) on the real file: typed errors only, never a hang -----------------------------------

_REAL: dict[str, bytes] = {}


def _real(path: Path) -> bytes:
    if "data" not in _REAL:
        _REAL["data"] = path.read_bytes()
    return _REAL["data"]


# Triage header, main-header fields the reader uses, and the start of each section table.
_TARGETS = [
    (0x2000, 0x80),  # TRIAGE_DUMP64
    (0x30, 4),  # MachineImageType
    (0x80, 8),  # KdDebuggerDataBlock
    (0x20D0, 0x40),  # unloaded-driver count and first entry
    (0x10828, 0x120),  # first two driver entries
    (0x15D18, 0x40),  # string pool start
    (0x19438, 0x40),  # data-block table start
    (0x104A8 + 0x210, 0xB8),  # KDBG KiProcessorBlock .. Size* fields
    (0x13A28C, 0x30),  # DumpBlob file header + first record
]


@st.composite
def mutations(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        start, length = draw(st.sampled_from(_TARGETS))
        pos = start + draw(st.integers(0, length - 1))
        kind = draw(st.sampled_from(["byte", "u32", "max"]))
        if kind == "byte":
            out.append((pos, bytes([draw(st.integers(0, 255))])))
        elif kind == "u32":
            out.append((pos, struct.pack("<I", draw(st.integers(0, 0xFFFFFFFF)))))
        else:
            out.append((pos, b"\xff\xff\xff\xff"))
    return out


_EXAMPLES = int(os.environ.get("DBGAUTO_HYPOTHESIS_EXAMPLES", "120"))  # modest by default: shared 2-core machine


@settings(
    max_examples=_EXAMPLES,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(muts=mutations())
def test_mutated_real_file_never_untyped(triage_x64_path: Path, muts: list[tuple[int, bytes]]) -> None:
    data = bytearray(_real(triage_x64_path))
    for pos, b in muts:
        data[pos : pos + len(b)] = b
    try:
        tri = TriageDump.parse_buffer(data, path=triage_x64_path, is_64bit=True)
    except DbgautoError:
        return
    tri.to_dict()
    _kv(tri)["stack_scan"]
    assert isinstance(tri.warnings, list)
    if tri.top_of_stack is not None:
        with contextlib.suppress(DbgautoError):
            tri.memory.read(tri.top_of_stack, 64)


@settings(max_examples=_EXAMPLES, deadline=2000)
@given(
    cut=st.integers(0, 0x4000),
    flips=st.lists(st.tuples(st.integers(0, 0x3FFF), st.integers(0, 255)), max_size=8),
)
def test_mutated_handmade_anywhere_never_untyped(cut: int, flips: list[tuple[int, int]]) -> None:
    """Any byte of the hand-packed dump changed, and the file cut anywhere: typed errors or warnings only."""
    data, _ = handmade()
    base = len(data)
    for pos, value in flips:
        data[0x1F00 + pos % (base - 0x1F00)] = value
    data = data[: max(0, base - cut)]
    try:
        tri = parse(data)
    except DbgautoError:
        return
    tri.to_dict(include_data_blocks=True)
    _ = (_kv(tri)["process_name"], _kv(tri)["prcb_address"], tri.memory.block_count)


def test_a_damaged_driver_list_warns_every_time_it_is_read() -> None:
    """Driver lists are decoded once per distinct list per process: the second dump with the same damaged list
    gets the same names and the same warnings, and a list differing in one byte is decoded on its own."""
    data, off = handmade()
    put32(data, off["drivers"] + 0x90, 0x10)
    first, second = parse(bytearray(data)), parse(bytearray(data))
    for tri in (first, second):
        assert tri.drivers[1].name is None
        assert sum("outside the string pool" in w for w in tri.warnings) == 1
    assert first.drivers == second.drivers
    base_at = off["drivers"] + 0x90 + DUMP_DRIVER_ENTRY64.offset_of("dll_base")  # the second entry's DllBase
    struct.pack_into("<Q", data, base_at, 0xFFFFF80000123000)
    third = parse(data)
    assert third.drivers[1].base == 0xFFFFF80000123000
    assert first.drivers[1].base != third.drivers[1].base


def test_first_at_finds_the_first_block_starting_at_an_address() -> None:
    from dbgauto.kdump.triage_sections import BlockTable

    table = BlockTable([0x3000, 0x1000, 0x3000, 0x2000], [0x10, 0x20, 0x30, 0x40], [8, 8, 16, 8])
    assert table.first_at(0x3000) == 0  # the first of two blocks starting there, as list.index gave
    assert table.first_at(0x2000) == 3
    assert table.first_at(0x2004) is None
    assert BlockTable([], [], []).first_at(0) is None
