"""Hostile ARM64 dumps: AArch64 tables that loop or point beyond RAM, and a looping module list. Each gives a typed
error (or a warning and a cut list) after bounded work; nothing hangs. Corruptions are written with the testkit's
own table builder (``write_physical(..., allow_tables=True)``), never through dbgauto."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from dbgauto_testkit import dumpinflate

from dbgauto.engines.jobs import convert_dump
from dbgauto.errors import ConversionError, DbgautoError
from dbgauto.kdump.reader import KernelDump

_OA = 0x0000_FFFF_FFFF_F000  # AArch64 output-address bits [47:12] (Arm ARM D8.3)
_TABLE = 0b11
_BLOCK = 0b01
BEYOND_RAM = 0x7F_0000_0000  # far above the world's 32 MiB


def _entry(space: object, table_pa: int, index: int) -> tuple[int, int]:
    pa = table_pa + index * 8
    return pa, struct.unpack("<Q", space.memory.read(pa, 8))[0]  # type: ignore[attr-defined]


def _set(space: object, pa: int, value: int) -> None:
    space.write_physical(pa, struct.pack("<Q", value), allow_tables=True)  # type: ignore[attr-defined]


def _world(seed: int = 21) -> dumpinflate.KWorld:
    return dumpinflate.build_kworld("arm64", seed=seed, processors=2)


def _nt_l1(w: dumpinflate.KWorld) -> tuple[int, int]:
    """(PA of the level-1 entry that maps nt, its descriptor)."""
    nt = w.modules[0].base
    _, l0 = _entry(w.space, w.space.top_table, (nt >> 39) & 0x1FF)
    return _entry(w.space, l0 & _OA, (nt >> 30) & 0x1FF)


def _convert_fails(w: dumpinflate.KWorld, tmp_path: Path, dump_type: int) -> ConversionError:
    made = dumpinflate.write_kworld(tmp_path / "bad.dmp", "arm64", dump_type, world=w)
    with KernelDump.open(made.path) as d, pytest.raises(DbgautoError):
        d.read_virtual(w.kdbg_va, 0x10)  # the reader's own answer: a typed error, not garbage or a hang
    with pytest.raises(ConversionError) as info:
        convert_dump(made.path, tmp_path / "small.dmp")
    assert str(made.path) in str(info.value)
    return info.value


@pytest.mark.parametrize("dump_type", [1, 6])
def test_table_loop_back_to_level0(dump_type: int, tmp_path: Path) -> None:
    """nt's level-1 entry points back at the level-0 table: the walk re-enters the same tables (4 levels at most)."""
    w = _world()
    pa, _ = _nt_l1(w)
    _set(w.space, pa, w.space.top_table | _TABLE)
    err = _convert_fails(w, tmp_path, dump_type)
    assert "KDBG" in str(err)


def test_self_referencing_level1_table(tmp_path: Path) -> None:
    """A level-1 entry that names its own table (a loop at every level below)."""
    w = _world(22)
    pa, _ = _nt_l1(w)
    _set(w.space, pa, (pa & _OA) | _TABLE)
    _convert_fails(w, tmp_path, 6)


@pytest.mark.parametrize("kind", [_TABLE, _BLOCK])
def test_descriptor_beyond_ram(kind: int, tmp_path: Path) -> None:
    """nt's level-1 entry names a table / a 1 GiB block far above the machine's RAM."""
    w = _world(23)
    pa, _ = _nt_l1(w)
    _set(w.space, pa, BEYOND_RAM | kind | (1 << 10))
    _convert_fails(w, tmp_path, 1)


def test_level0_table_beyond_ram(tmp_path: Path) -> None:
    w = _world(24)
    nt = w.modules[0].base
    pa, _ = _entry(w.space, w.space.top_table, (nt >> 39) & 0x1FF)
    _set(w.space, pa, BEYOND_RAM | _TABLE)
    _convert_fails(w, tmp_path, 5)


def test_module_list_loop_is_cut(tmp_path: Path) -> None:
    """The fourth KLDR entry's Flink points back at the second: the list is cut there, with a warning."""
    w = _world(25)
    second, fourth = w.modules[1].entry_va, w.modules[3].entry_va
    w.space.write_virtual(fourth, struct.pack("<Q", second))
    made = dumpinflate.write_kworld(tmp_path / "loop.dmp", "arm64", 6, world=w)
    res = convert_dump(made.path, tmp_path / "small.dmp")
    assert any("loops back" in m for m in res.warnings)
    with KernelDump.open(res.output) as out:
        assert [d.base for d in out.triage.drivers] == [m.base for m in w.modules[:4]]
