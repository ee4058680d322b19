"""0x9F's IRP owner chain offsets: the built-in x64 row against all six ISF tables, and the symbol-table path (the
tables loaded by dbgauto's own ISF reader, nested fields followed by type name) giving the same offsets."""

from __future__ import annotations

import json
import lzma
import struct
from pathlib import Path

import pytest

from dbgauto.analysis.culprit import IRP_CHAIN_FIELDS, IRP_CHAIN_X64, IRP_CHAIN_X86, irp_chain_offsets, irp_owner
from dbgauto.symbols.isf import load_isf

SYMBOLS = Path(__file__).resolve().parents[2] / ".." / "shared" / "symbols" / "ntkrnlmp.pdb"


def _paths() -> list[Path]:
    paths = sorted(SYMBOLS.glob("*.json.xz"))
    if not paths:
        pytest.skip("no ntkrnlmp ISF tables in ../shared/symbols")
    return paths


def _isf_offset(types: dict, type_name: str, path: str) -> int:
    off = 0
    for part in path.split("."):
        f = types[type_name]["fields"][part]
        off += f["offset"]
        type_name = f["type"].get("name", "")
    return off


def test_builtin_x64_row_matches_every_isf_table() -> None:
    paths = _paths()
    assert len(paths) == 6
    for path in paths:
        with lzma.open(path) as fh:
            types = json.load(fh)["user_types"]
        assert tuple(_isf_offset(types, t, f) for t, f in IRP_CHAIN_FIELDS) == IRP_CHAIN_X64, path.name


def test_symbol_table_types_give_the_offsets(tmp_path: Path) -> None:
    for path in _paths():
        table = load_isf(path, cache_dir=tmp_path)
        assert irp_chain_offsets(table, 8) == (IRP_CHAIN_X64, "symbol-table offsets"), path.name
    assert irp_chain_offsets(None, 8) == (IRP_CHAIN_X64, "built-in offsets")
    assert irp_chain_offsets(None, 4) == (IRP_CHAIN_X86, "built-in offsets")


def test_a_table_with_other_offsets_is_followed() -> None:
    from dbgauto.symbols.table import FieldInfo, TypeInfo

    moved = {"_IRP": {"Tail": (0x80, "T")}, "T": {"Overlay": (0, "O")}, "O": {"CurrentStackLocation": (0x48, "X*")}}
    moved |= {"_IO_STACK_LOCATION": {"DeviceObject": (0x30, "_DEVICE_OBJECT*")}}
    moved |= {"_DEVICE_OBJECT": {"DriverObject": (0x10, "_DRIVER_OBJECT*")}}
    moved |= {"_DRIVER_OBJECT": {"DriverStart": (0x20, "void*"), "DriverName": (0x40, "_UNICODE_STRING")}}

    class Table:
        def type(self, name: str) -> TypeInfo | None:
            fields = moved.get(name)
            return None if fields is None else TypeInfo(name, 0x100, {k: FieldInfo(*v) for k, v in fields.items()})

    offs, how = irp_chain_offsets(Table(), 8)
    assert (offs, how) == ((0xC8, 0x30, 0x10, 0x20, 0x40), "symbol-table offsets")
    irp, loc, dev, drv, text = 0x10000, 0x20000, 0x30000, 0x40000, 0x50000
    name = "\\Driver\\vendor".encode("utf-16-le")
    memory = {
        irp + 0xC8: struct.pack("<Q", loc),
        loc + 0x30: struct.pack("<Q", dev),
        dev + 0x10: struct.pack("<Q", drv),
        drv + 0x20: struct.pack("<Q", 0xFFFFF800_11110000),
        drv + 0x40: struct.pack("<HH", len(name), len(name)),
        drv + 0x48: struct.pack("<Q", text),
        text: name,
    }

    def read(va: int, size: int) -> bytes | None:
        raw = memory.get(va)
        return None if raw is None else raw[:size]

    got = irp_owner(read, irp, 8, Table())
    assert got is not None
    assert (got.driver_object, got.driver_start, got.driver_name) == (drv, 0xFFFFF800_11110000, "\\Driver\\vendor")
    memory[drv + 0x40] = struct.pack("<HH", 0xFFFF, 0xFFFF)  # an odd, huge length: no name, never a large read
    assert irp_owner(read, irp, 8, Table()).driver_name is None
