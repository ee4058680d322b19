"""Writer ↔ reader independence: the reader on hand-packed bytes; the writer's output under a tiny separate parser."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest
from dbgauto_testkit.triage_handmade import (
    BLOB_TAG,
    DRV_BASE,
    KDBG_VA,
    NT_BASE,
    PRCB_VA,
    PROCESS_VA,
    THREAD_VA,
    TOP_OF_STACK,
    build_handmade,
)

from dbgauto.kdump.constants import Machine
from dbgauto.kdump.records import LoadedDriver, UnloadedDriver
from dbgauto.kdump.triage import TriageDump
from dbgauto.kdump.triage_writer import BlobSpec, TriageDumpBuilder
from dbgauto.kernel.smalldump import kernel_view, parts_from_triage


def _kv(tri: Any) -> dict[str, Any]:
    """What the kernel layer establishes from the small dump's copies (addresses, identity, stack scan)."""
    return kernel_view(parts_from_triage(tri))


def test_reader_on_handmade_bytes() -> None:
    hm = build_handmade()
    tri = TriageDump.parse_buffer(hm.data, path="handmade.dmp", is_64bit=True)
    assert tri.warnings == []
    assert tri.valid
    assert tri.machine == Machine.AMD64
    assert tri.context is not None
    assert (tri.context.pc, tri.context.sp, tri.context.registers["rax"]) == (
        NT_BASE + 0x1234,
        TOP_OF_STACK + 0x40,
        0x1111,
    )
    assert tri.context.registers["cs"] == 0x10
    assert tri.exception is not None
    assert (tri.exception.code, tri.exception.number_parameters, tri.exception.parameters) == (
        0xC0000005,
        2,
        (1, 0xDEAD0000),
    )
    assert tri.mm is not None
    assert (tri.mm.version, tri.mm.size) == (1, 0x50)
    [u] = tri.unloaded_drivers
    assert (u.name, u.start, u.end, u.name_length) == ("oldfilter_lo", 0x1000, 0x3000, 36)  # 12 chars kept
    assert [(d.name, d.base, d.size, d.timestamp, d.checksum) for d in tri.drivers] == [
        ("\\SystemRoot\\system32\\ntoskrnl.exe", NT_BASE, 0x100000, 0x5F5E100, 0xABC),
        ("\\x\\d.sys", DRV_BASE, 0x4000, 7, 9),
    ]
    assert tri.kdbg is not None
    assert tri.kdbg.kern_base == NT_BASE
    assert tri.kdbg.address == KDBG_VA
    k = _kv(tri)
    assert (k["prcb_address"], k["thread_address"], k["process_address"]) == (PRCB_VA, THREAD_VA, PROCESS_VA)
    assert (k["process_name"], k["pid"], k["tid"]) == ("handmade.exe", 8, 0x1C)
    assert [(b.size) for b in tri.data_blocks] == [8, 0x100, 3]
    memory = parts_from_triage(tri).memory
    assert memory is not None
    assert memory.read(0xFFFFF80000700002, 2) == b"yz"
    assert memory.read(PROCESS_VA + 0x5A8, 8) == b"handmade"
    assert memory.read(KDBG_VA + 0x10, 4) == b"KDBG"
    hits = _kv(tri)["stack_scan"]
    assert [(h.address - TOP_OF_STACK, h.module, h.offset) for h in hits] == [
        (0, "ntoskrnl.exe", 0x1234),
        (0x18, "d.sys", 0x10),
    ]
    [blob] = tri.blobs
    assert (blob.tag, tri.blob_data(blob), blob.post_pad) == (BLOB_TAG, b"hello blob", 6)
    assert tri.dump_header["bugcheck_code"] == 0xD1


def test_identity_is_unknown_when_sizes_disagree() -> None:
    """A KDBG whose SizeEThread does not match the table row: no name/pid/tid rather than a guess."""
    hm = build_handmade()
    data = bytearray(hm.data)
    struct.pack_into("<H", data, hm.offsets["kdbg"] + 0x2C0, 0x8A0)
    tri = TriageDump.parse_buffer(bytes(data), path="x.dmp", is_64bit=True)
    assert (_kv(tri)["process_name"], _kv(tri)["pid"], _kv(tri)["tid"]) == (None, None, None)


def test_identity_pid_mismatch_gives_no_ids() -> None:
    hm = build_handmade()
    data = bytearray(hm.data)
    struct.pack_into("<Q", data, hm.offsets["process"] + 0x440, 12)  # EPROCESS pid != ETHREAD.Cid pid
    tri = TriageDump.parse_buffer(bytes(data), path="x.dmp", is_64bit=True)
    assert _kv(tri)["pid"] is None
    assert _kv(tri)["tid"] is None


# --- an independent reader for the writer's output (spec offsets only; no dbgauto structure code) --------------


def mini_parse_x64(data: bytes) -> dict[str, object]:
    assert data[:8] == b"PAGEDU64"
    (dump_type,) = struct.unpack_from("<I", data, 0xF98)
    (fields,) = struct.unpack_from("<I", data, 0x1038)
    t = struct.unpack_from("<18IQIIQQIIIIII", data, 0x2000)
    names = [
        "sp_build",
        "size_of_dump",
        "valid",
        "ctx",
        "exc",
        "mm",
        "unl",
        "prcb",
        "proc",
        "thr",
        "stk",
        "stk_size",
        "drv",
        "drv_count",
        "pool",
        "pool_size",
        "broken",
        "options",
        "top",
        "bs1",
        "bs2",
        "bs3",
        "dp_addr",
        "dp_off",
        "dp_size",
        "kd",
        "kd_size",
        "blk",
        "blk_count",
    ]
    h = dict(zip(names, t, strict=True))
    drivers = []
    for i in range(h["drv_count"]):
        e = h["drv"] + 0x90 * i
        (name_off,) = struct.unpack_from("<I", data, e)
        base, size, csum, stamp = (
            struct.unpack_from("<Q", data, e + 0x38)[0],
            struct.unpack_from("<I", data, e + 0x48)[0],
            struct.unpack_from("<I", data, e + 0x80)[0],
            struct.unpack_from("<I", data, e + 0x88)[0],
        )
        (n,) = struct.unpack_from("<I", data, name_off)
        assert name_off % 8 == 0
        assert data[name_off + 4 + 2 * n : name_off + 6 + 2 * n] == b"\0\0"
        drivers.append((data[name_off + 4 : name_off + 4 + 2 * n].decode("utf-16-le"), base, size, stamp, csum))
    blocks = [struct.unpack_from("<QII", data, h["blk"] + 16 * i) for i in range(h["blk_count"])]
    blobs = []
    pos = h["size_of_dump"]
    if pos < len(data):
        assert data[pos : pos + 8] == b"DumpBlob"
        pos += 0x10
        while pos < len(data):
            hs, tag, size, pre, post = struct.unpack_from("<I16sIII", data, pos)
            blobs.append((uuid.UUID(bytes_le=tag), data[pos + hs + pre : pos + hs + pre + size]))
            pos += hs + pre + size + post
        assert pos == len(data)
    (count,) = struct.unpack_from("<Q", data, h["unl"])
    unloaded = [
        (
            data[h["unl"] + 8 + 56 * i + 16 : h["unl"] + 8 + 56 * i + 40].decode("utf-16-le").rstrip("\x00"),
            *struct.unpack_from("<QQ", data, h["unl"] + 8 + 56 * i + 40),
        )
        for i in range(count)
    ]
    return {
        "dump_type": dump_type,
        "fields": fields,
        "h": h,
        "drivers": drivers,
        "blocks": blocks,
        "blobs": blobs,
        "unloaded": unloaded,
        "marker": data[h["valid"] : h["valid"] + 4],
    }


def test_writer_output_under_independent_parser() -> None:
    prcb = bytes(range(256)) * 2
    blocks = [(0xFFFFF80000001000, b"A" * 5), (0xFFFFF80000002000, b"B" * 0x100), (0xFFFFF80000003000, b"C")]
    b = TriageDumpBuilder(
        machine=Machine.AMD64,
        header_fields={"minor_version": 22621, "major_version": 0xF, "bugcheck_code": 0x50, "number_processors": 4},
        context={"rip": 0xFFFFF80000001234, "rsp": 0xFFFF800000008000, "cs": 0x10, "ss": 0x18},
        unloaded_drivers=[UnloadedDriver("averyveryverylongname.sys", 0x10, 0x20)],
        prcb=prcb,
        process=b"P" * 0x40,
        thread=b"T" * 0x30,
        stack=b"S" * 0x100,
        top_of_stack=0xFFFF800000007F00,
        drivers=[
            LoadedDriver("\\SystemRoot\\nt.exe", 0xFFFFF80000000000, 0x200000, 0x11, 0x22),
            LoadedDriver("\\a.sys", 0x1000, 0x2000, 3, 4),
        ],
        kdbg=b"\0" * 0x10 + b"KDBG" + struct.pack("<I", 0x380) + bytes(0x368),
        data_blocks=blocks,
        blobs=[BlobSpec(BLOB_TAG, b"xyz"), BlobSpec(uuid.UUID(int=0), b"")],
    )
    data = b.build()
    p = mini_parse_x64(data)
    h = p["h"]
    assert isinstance(h, dict)
    assert p["dump_type"] == 4
    assert p["marker"] == b"TRGD"
    assert h["size_of_dump"] == h["valid"] + 4
    assert h["valid"] % 8 == 0
    assert p["fields"] == 0xCFF  # BASIC_INFO | DEBUGGER_DATA | DATA_BLOCKS, as Windows sets them
    assert h["options"] == 0xFFFFFFFF
    assert h["ctx"] == 0x348
    assert struct.unpack_from("<Q", data, 0x348 + 0xF8)[0] == 0xFFFFF80000001234
    assert data[0x348 + 0x4D0 : 0xF00] == bytes(0xF00 - 0x348 - 0x4D0)  # zeros after the CONTEXT
    assert data[0x60:0x80] == b"PAGE" * 8  # VersionUser: filler
    assert data[0x1058:0x2000] == b"PAGE" * ((0x2000 - 0x1058) // 4)
    assert p["drivers"] == [
        ("\\SystemRoot\\nt.exe", 0xFFFFF80000000000, 0x200000, 0x11, 0x22),
        ("\\a.sys", 0x1000, 0x2000, 3, 4),
    ]
    # only DllBase, SizeOfImage, CheckSum, TimeDateStamp (and the name offset) are non-zero in an entry
    e0 = data[h["drv"] : h["drv"] + 0x90]
    filled = {0, 1, 2, 3, *range(0x38, 0x40), *range(0x48, 0x4C), *range(0x80, 0x84), *range(0x88, 0x8C)}
    assert all(e0[i] == 0 for i in range(0x90) if i not in filled)
    assert p["unloaded"] == [("averyveryver", 0x10, 0x20)]
    # section order and 8-alignment, as Windows lays them out
    order = [h[k] for k in ("mm", "unl", "prcb", "proc", "thr", "stk", "kd", "drv", "pool", "blk")]
    assert order == sorted(order)
    assert all(o % 8 == 0 for o in order)
    assert data[h["prcb"] : h["prcb"] + len(prcb)] == prcb
    assert [(a, s) for a, _o, s in p["blocks"]] == [(a, len(d)) for a, d in blocks]
    offs = [o for _a, o, _s in p["blocks"]]
    assert offs[0] == h["blk"] + 16 * 3
    assert offs[1] == offs[0] + 5  # packed, unaligned
    assert data[offs[2]] == ord("C")
    assert h["valid"] == offs[0] + 8 + 0x100 + 8  # Σ align8(size), as Windows reserves
    assert p["blobs"] == [(BLOB_TAG, b"xyz"), (uuid.UUID(int=0), b"")]
    # and the dbgauto reader agrees
    tri = TriageDump.parse_buffer(data, path="w.dmp", is_64bit=True)
    # this KDBG has no Size* fields, so the copies are sized by the gap to the next section (and say so)
    assert [w.split(":")[0] for w in tri.warnings] == ["prcb", "process", "thread"]
    assert (tri.prcb, tri.process, tri.thread) == (prcb, b"P" * 0x40, b"T" * 0x30)
    assert [d.name for d in tri.drivers] == ["\\SystemRoot\\nt.exe", "\\a.sys"]


def test_writer_reproduces_handmade_bytes() -> None:
    """Reading the hand-packed dump and writing it again gives the same bytes (both follow the same rules)."""
    hm = build_handmade()
    tri = TriageDump.parse_buffer(hm.data, path="h.dmp", is_64bit=True)
    assert TriageDumpBuilder.from_triage(tri).build() == hm.data


@pytest.mark.parametrize("missing", ["drivers", "data_blocks", "kdbg", "stack"])
def test_writer_omits_absent_sections(missing: str) -> None:
    parts: dict[str, object] = {
        "drivers": [LoadedDriver("\\a.sys", 0x1000, 0x2000)],
        "data_blocks": [(0xFFFFF80000001000, b"q" * 9)],
        "kdbg": b"\0" * 0x10 + b"KDBG" + struct.pack("<I", 0x40) + bytes(0x28),
        "stack": b"s" * 0x40,
    }
    parts[missing] = () if missing in ("drivers", "data_blocks") else None
    b = TriageDumpBuilder(machine=Machine.AMD64, context={"rip": 1}, top_of_stack=0xFFFF800000001000, **parts)  # type: ignore[arg-type]
    tri = TriageDump.parse_buffer(b.build(), path="o.dmp", is_64bit=True)
    assert tri.valid
    present = {
        "drivers": bool(tri.drivers),
        "data_blocks": bool(tri.data_blocks),
        "kdbg": tri.kdbg is not None,
        "stack": tri.stack is not None,
    }
    assert present == {k: k != missing for k in present}


def test_names_outside_the_bmp_count_utf16_units() -> None:
    """DUMP_STRING.Length is in UTF-16 units: a character outside the BMP counts 2 (and still round-trips)."""
    name = "\\x\\\U0001f600.sys"
    b = TriageDumpBuilder(machine=Machine.AMD64, context={"rip": 1}, drivers=[LoadedDriver(name, 0x1000, 0x1000)])
    data = b.build()
    pool = struct.unpack_from("<I", data, 0x2000 + 0x38)[0]
    assert struct.unpack_from("<I", data, pool)[0] == len(name) + 1
    tri = TriageDump.parse_buffer(data, path="u.dmp", is_64bit=True)
    assert tri.drivers[0].name == name
    assert tri.warnings == []
