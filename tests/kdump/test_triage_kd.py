"""KDDEBUGGER_DATA64 / KLDR / unloaded-driver layouts against the spec, and bounded KDBG decoding."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from dbgauto.kdump.structs import kd
from dbgauto.kdump.structs import triage as ts

_TYPES = {"u64": "Q", "u32": "I", "u16": "H", "u8": "B", "u16 bitfield": "H"}


def test_kdbg_layout_matches_every_row_of_the_spec(shared_dir: Path) -> None:
    """Every field of kd-structures.md §2 is declared at its offset with its width (the bitfield as PagingBits)."""
    text = (shared_dir / "spec" / "kd-structures.md").read_text()
    section = text.split("## 2.")[1].split("Always bound")[0]
    rows = re.findall(r"^\| 0x([0-9A-F]+) \| (u64|u32|u16 bitfield|u16|u8) \| (\w+)", section, re.M)
    assert len(rows) > 150
    for off, typ, name in rows:
        lay_name = "PagingBits" if name == "PaeEnabled" else name
        f = kd.KDDEBUGGER_DATA64.by_name[lay_name]
        assert (f.offset, f.kind) == (int(off, 16), _TYPES[typ]), name
    assert kd.KDDEBUGGER_DATA64.size == 0x3A0


def test_kldr_layouts() -> None:
    d = kd.KLDR_DATA_TABLE_ENTRY64
    assert [d.offset_of(n) for n in ("DllBase", "SizeOfImage", "FullDllName", "BaseDllName", "CheckSum")] == [
        0x30,
        0x40,
        0x48,
        0x58,
        0x78,
    ]
    assert d.offset_of("TimeDateStamp") == 0x80
    assert d.size == 0x88
    live = kd.KLDR_DATA_TABLE_ENTRY_LIVE_WIN10_X64
    assert (live.offset_of("EntryPoint"), live.offset_of("Flags"), live.offset_of("TimeDateStamp")) == (
        0x38,
        0x68,
        0x9C,
    )
    k32 = kd.KLDR_DATA_TABLE_ENTRY32
    assert (k32.offset_of("DllBase"), k32.offset_of("SizeOfImage"), k32.offset_of("TimeDateStamp"), k32.size) == (
        0x18,
        0x20,
        0x44,
        0x48,
    )
    # the triage driver entries embed them after the name offset (+8 on x64, +4 on x86)
    assert ts.DUMP_DRIVER_ENTRY64.offset_of("time_date_stamp") == 0x88
    assert ts.DUMP_DRIVER_ENTRY32.offset_of("dll_base") == 0x1C
    assert (kd.UNLOADED_DRIVERS64.size, kd.UNLOADED_DRIVERS32.size) == (0x28, 0x18)
    assert (kd.UNICODE_STRING64.offset_of("Buffer"), kd.UNICODE_STRING32.offset_of("Buffer")) == (8, 4)


def test_live_entry_translates_to_debugger_entry() -> None:
    raw = bytearray(0xA0)
    struct.pack_into("<QQI", raw, 0x30, 0xFFFFF80000000000, 0xFFFFF80000001000, 0x5000)
    struct.pack_into("<I", raw, 0x78, 0xABCD)
    struct.pack_into("<I", raw, 0x9C, 0x12345678)
    live = kd.KLDR_DATA_TABLE_ENTRY_LIVE_WIN10_X64.unpack(raw)
    dbg = kd.live_kldr_to_debugger_entry(live)
    packed = kd.KLDR_DATA_TABLE_ENTRY64.pack(dbg)
    assert struct.unpack_from("<Q", packed, 0x30)[0] == 0xFFFFF80000000000
    assert struct.unpack_from("<I", packed, 0x80)[0] == 0x12345678  # TimeDateStamp moved from 0x9C to 0x80
    assert struct.unpack_from("<I", packed, 0x78)[0] == 0xABCD


def _kdbg(size: int, total: int = 0x3A0) -> bytearray:
    b = bytearray(total)
    struct.pack_into("<4sI", b, 0x10, b"KDBG", size)
    struct.pack_into("<Q", b, 0x18, 0xFFFFF80000000000)
    struct.pack_into("<H", b, 0x338, 0x1234)  # OffsetPrcbContext
    struct.pack_into("<H", b, 0x33A, 0x40)  # OffsetPrcbMaxBreakpoints (Win8+)
    struct.pack_into("<Q", b, 0x360, 0xFFFFF68000000000)  # PteBase (RS1+)
    return b


def test_decode_is_bounded_by_header_size() -> None:
    win7 = kd.decode_kdbg_fields(_kdbg(0x340))
    assert win7["OffsetPrcbContext"] == 0x1234
    assert win7["OffsetPrcbMaxBreakpoints"] == 0x40
    assert "PteBase" not in win7  # past Size: absent, not zero
    assert "OffsetKThreadStackLimit" not in win7
    newest = kd.decode_kdbg_fields(_kdbg(0x3A0))
    assert newest["PteBase"] == 0xFFFFF68000000000
    assert len(newest) == len(kd.KDDEBUGGER_DATA64.fields)


def test_decode_is_bounded_by_available_bytes_and_size_argument() -> None:
    short = kd.decode_kdbg_fields(bytes(_kdbg(0x380))[:0x50])
    assert max(kd.KDDEBUGGER_DATA64.offset_of(n) for n in short) == 0x48  # PsLoadedModuleList ends at 0x50
    assert kd.decode_kdbg_fields(_kdbg(0x380), size=0x20) == {
        "ListFlink": 0,
        "ListBlink": 0,
        "OwnerTag": kd.KDBG_OWNER_TAG_VALUE,
        "Size": 0x380,
        "KernBase": 0xFFFFF80000000000,
    }
    assert kd.decode_kdbg_fields(b"\0" * 0x10) == {}
    assert kd.kdbg_header(_kdbg(0x380)) == (kd.KDBG_OWNER_TAG_VALUE, 0x380)
    assert kd.kdbg_header(b"KDBG") is None


def test_decode_at_offset_in_a_larger_buffer() -> None:
    buf = bytes(0x100) + bytes(_kdbg(0x380))
    assert kd.decode_kdbg_fields(buf, 0x100)["KernBase"] == 0xFFFFF80000000000


def test_helpers() -> None:
    assert kd.sign_extend32(0x80001000) == 0xFFFFFFFF80001000
    assert kd.sign_extend32(0x7FFF0000) == 0x7FFF0000
    assert kd.paging_bits({"PagingBits": 0b010101}) == {
        "PaeEnabled": 1,
        "KiBugCheckRecoveryActive": 0,
        "PagingLevels": 5,
    }
    assert kd.paging_bits({}) is None
    us = struct.pack("<HHIQ", 10, 12, 0, 0xFFFF800000001000)
    assert kd.split_unicode_string(us, is_64bit=True) == (10, 12, 0xFFFF800000001000)
