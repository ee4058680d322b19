"""Damaged large dumps: typed errors (ConversionError) or warnings, and never a half-written output."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from dbgauto_testkit import dumpinflate, dumpsynth

from dbgauto.engines.jobs import convert_dump
from dbgauto.errors import ConversionError, OutputExistsError
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.kdbg import KdbgKeys

ABSENT_VA = 0xFFFF_C08B_F000_0000  # no captured byte and no synthesized structure lives there


def _write(world: Any, path: Path, *, drop: tuple[int, int] | None = None) -> Path:
    """Write ``world`` as a Complete dump, or as a Kernel bitmap dump without the pages of VA range ``drop``."""
    space = dumpinflate.build_space(world)
    fields = dumpinflate.header_fields(world.small)
    if drop is None:
        dumpsynth.write_full_dump(path, space, fields=fields)
        return path
    gone = {space.translate(va) // 0x1000 for va in range(drop[0], drop[1], 0x1000) if space.translate(va) is not None}
    assert gone
    mem = dumpsynth.PhysicalMemory(space.memory.ram_runs)
    for pfn in space.memory.explicit_pfns():
        if pfn not in gone:
            mem.write(pfn * 0x1000, space.memory.page(pfn))
    dumpsynth.write_bitmap_dump(path, mem, arch="x64", dump_type=6, fields=fields)
    return path


def _no_output(folder: Path, out: Path) -> None:
    assert not out.exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]


@pytest.fixture
def world(small: Any) -> Any:
    return dumpinflate.build_world(small)


def _without(world: Any, what: str) -> None:
    world.placements = [p for p in world.placements if p[2] != what]


def test_kdbg_missing(world: Any, tmp_path: Path) -> None:
    _without(world, "KDBG")
    src = _write(world, tmp_path / "nokdbg.dmp")
    out = tmp_path / "nokdbg.mini.dmp"
    with pytest.raises(ConversionError, match="KDBG"):
        convert_dump(src, out)
    _no_output(tmp_path, out)


def test_kdbg_damaged(world: Any, small: Any, tmp_path: Path) -> None:
    damaged = bytearray(small.kdbg)
    damaged[0x10:0x14] = b"XXXX"
    world.place(small.kdbg_va, bytes(damaged), "damaged KDBG")
    src = _write(world, tmp_path / "badkdbg.dmp")
    with pytest.raises(ConversionError, match="OwnerTag"):
        convert_dump(src, tmp_path / "out.dmp")
    _no_output(tmp_path, tmp_path / "out.dmp")


def test_encoded_kdbg_without_code_pattern_needs_keys(small: Any, tmp_path: Path) -> None:
    world = dumpinflate.build_world(small, encoded=True)
    _without(world, "KdCopyDataBlock-like code")
    src = _write(world, tmp_path / "enc.dmp")
    with pytest.raises(ConversionError, match="encoded"):
        convert_dump(src, tmp_path / "a.dmp")
    never, always, enc_va = world.keys
    with pytest.raises(ConversionError, match="keys given"):
        convert_dump(src, tmp_path / "b.dmp", keys=KdbgKeys(never ^ 1, always, enc_va))
    res = convert_dump(src, tmp_path / "c.dmp", keys=KdbgKeys(never, always, enc_va))
    with KernelDump.open(res.output) as out:
        assert out.triage.kdbg is not None
        assert out.triage.kdbg.raw == small.kdbg


def test_thread_pointer_into_absent_page(world: Any, small: Any, tmp_path: Path) -> None:
    off = struct.unpack_from("<H", small.kdbg, 0x2B4)[0]  # OffsetPrcbCurrentThread
    world.place(world.prcb_va + off, struct.pack("<Q", ABSENT_VA), "bad CurrentThread")
    src = _write(world, tmp_path / "thread.dmp")
    with pytest.raises(ConversionError, match=f"current thread at {ABSENT_VA:#x} not in the dump"):
        convert_dump(src, tmp_path / "out.dmp")
    _no_output(tmp_path, tmp_path / "out.dmp")


def test_looping_module_list(world: Any, tmp_path: Path) -> None:
    entries = world.module_entries
    world.place(entries[5], struct.pack("<Q", entries[2]), "loop")
    src = _write(world, tmp_path / "loop.dmp")
    res = convert_dump(src, tmp_path / "loop.mini.dmp")
    assert any("loops back" in w for w in res.warnings)
    with KernelDump.open(res.output) as out:
        names = [d.name for d in out.triage.drivers]
    assert len(names) == 6
    assert names[0] == "\\SystemRoot\\system32\\ntoskrnl.exe"


def test_bitmap_dump_without_stack_pages(world: Any, small: Any, tmp_path: Path) -> None:
    thread = small.thread
    limit, base = struct.unpack_from("<QQ", thread, 0x30)  # KDBG OffsetKThreadStackLimit/Base: 0x30, 0x38
    assert limit < small.top_of_stack < base
    src = _write(world, tmp_path / "nostack.dmp", drop=(limit, base))
    res = convert_dump(src, tmp_path / "nostack.mini.dmp")
    assert any("kernel stack" in w and "not in the dump" in w for w in res.warnings)
    with KernelDump.open(res.output) as out:
        tri = out.triage
        assert tri.stack is None
        assert tri.thread == small.thread
        assert tri.prcb == small.prcb
        assert not any(limit <= b.address < base for b in tri.data_blocks)


def test_refuses_to_overwrite_and_never_touches_source(cases: dict[str, Any], tmp_path: Path) -> None:
    src = cases["complete"].inflated.path
    before = (src.stat().st_size, src.stat().st_mtime_ns)
    out = tmp_path / "x.mini.dmp"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        convert_dump(src, out)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(ConversionError, match="replace the source"):
        convert_dump(src, src, overwrite=True)
    assert (src.stat().st_size, src.stat().st_mtime_ns) == before
    res = convert_dump(src, out, overwrite=True)
    assert res.size == out.stat().st_size > 0x2000
