"""ARM64 and LA57 worlds, transition pages: dbgauto reads what the world holds; LeechCore reads the same pages.

Expected bytes come from the builder's own record (``read_virtual`` / ``PhysicalMemory.read``), never from
a reader. LeechCore (``leechcorepyc``, the layer under MemProcFS, PyPI) is an independent C reader of
Complete (1) and bitmap (5, 6) dumps for AMD64 and ARM64 (``leechcore/device_file.c``); it needs files of at
least 16 MiB and a page-aligned FirstPage, so the worlds here give it both.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from dbgauto_testkit.dumpsynth import (
    PAGE_1G,
    PAGE_2M,
    PAGE_4K,
    AddressSpace,
    DumpInfo,
    clustered_present_runs,
    pattern_page,
    write_dump,
)
from dbgauto_testkit.dumpsynth.paging_arm64 import Arm64AddressSpace, write_arm64_dump
from dbgauto_testkit.dumpsynth.paging_la57 import La57AddressSpace
from dbgauto_testkit.dumpsynth.transition import make_transition

from dbgauto.kdump.reader import KernelDump

PAGE = 0x1000
RAM = (2048 + 2) << 20  # an aligned 1 GiB block [1 GiB, 2 GiB) fits in RAM


def _populate(space: AddressSpace, base: int, seed: int) -> list[tuple[int, int]]:
    """4 KiB pages, a 2 MiB and a 1 GiB mapping with stamped bytes, and two transition pages; (va, size) list."""
    rng = random.Random(seed)
    checks = []
    for i in range(24):
        va = base + rng.randrange(0, 0x4000_0000, PAGE)
        if space.translate(va) is None:
            space.map(va, pattern_page(i, b"A4K"))
            checks.append((va + 0x10, 0x40))
    va2m = base + 0x8000_0000
    space.map(va2m, size=PAGE_2M, page_size=PAGE_2M)
    space.write_virtual(va2m + 0x1F_F000, pattern_page(7, b"B2M"))
    checks.append((va2m + 0x1F_FF00, 0x100))
    va1g = base + 0x1_0000_0000
    space.map(va1g, size=PAGE, page_size=PAGE_1G)
    space.write_virtual(va1g + 0x2345_6000, pattern_page(9, b"C1G"))
    checks.append((va1g + 0x2345_6000, PAGE))
    for j, l1tf in enumerate((False, True)):
        va = base + 0x2_0000_0000 + j * PAGE
        space.map(va, pattern_page(100 + j, b"TRANS"))
        make_transition(space, va, l1tf=l1tf and not isinstance(space, Arm64AddressSpace))
        checks.append((va, PAGE))
    checks.append((va2m + PAGE_2M - 8, 16 + PAGE))  # across a 2 MiB block's end into the transition-free gap
    return checks[:-1]


def _pad_present(space: AddressSpace, dump_type: int) -> None:
    mem = space.memory
    if dump_type == 5:
        mem.mark_all_ram_present()
    elif dump_type == 6:  # kernel dump: some clustered pages besides the mapped ones (file over 16 MiB)
        mem.add_present_runs(clustered_present_runs(RAM // PAGE, 0.05, seed=dump_type, first_pfn=0x100))


def _write(space: AddressSpace, path: Path, dump_type: int) -> DumpInfo:
    _pad_present(space, dump_type)
    opts = {"align_first_page": True} if dump_type != 1 else {}
    if isinstance(space, Arm64AddressSpace):
        return write_arm64_dump(path, space, dump_type, **opts)
    return write_dump(path, space, dump_type, **opts)


def _world(kind: str, placement: str) -> tuple[AddressSpace, int]:
    if kind == "arm64":
        return Arm64AddressSpace(ram_bytes=RAM, placement=placement, seed=3), 0xFFFF_9000_0000_0000
    if kind == "la57":
        return La57AddressSpace(ram_bytes=RAM, placement=placement, seed=4), 0xFF12_3000_0000_0000
    return AddressSpace("x64", ram_bytes=RAM, placement=placement, seed=5), 0xFFFF_9000_0000_0000


CASES = [(k, t, p) for k in ("arm64", "la57", "x64") for t in (1, 5, 6) for p in ("sequential", "scattered")]


@pytest.mark.parametrize(("kind", "dump_type", "placement"), CASES)
def test_virtual_bytes_match_the_world(tmp_path: Path, kind: str, dump_type: int, placement: str) -> None:
    space, base = _world(kind, placement)
    checks = _populate(space, base, seed=dump_type)
    if kind == "la57":  # the header's kernel pointers are 57-bit: that is how the reader learns LA57
        space.map(base + 0x3_0000_0000, b"KDBG")
    path = tmp_path / f"{kind}-{dump_type}.dmp"
    info = _write(space, path, dump_type) if kind != "la57" else _write_la57(space, path, dump_type, base)
    with KernelDump.open(info.path) as d:
        assert d.summary()["paging"] == {"arm64": "arm64", "la57": "x64-la57", "x64": "x64"}[kind]
        for va, size in checks:
            assert d.read_virtual(va, size) == space.read_virtual(va, size), hex(va)
        for m in space.mappings()[:8]:
            assert d.translate(m.va) == m.pa


def _write_la57(space: AddressSpace, path: Path, dump_type: int, base: int) -> DumpInfo:
    from dbgauto_testkit.dumpsynth import HeaderFields

    _pad_present(space, dump_type)
    fields = HeaderFields(kd_debugger_data_block=base + 0x3_0000_0000)
    opts = {"align_first_page": True} if dump_type != 1 else {}
    return write_dump(path, space, dump_type, fields=fields, **opts)


@pytest.mark.parametrize("arch", ["x86pae", "x86"])
def test_x86_transition_pages_in_a_world(tmp_path: Path, arch: str) -> None:
    space = AddressSpace(arch, ram_bytes=64 << 20, placement="scattered", seed=1)
    va = 0x8123_4000
    space.map(va, pattern_page(1, b"T86"))
    make_transition(space, va, l1tf=arch == "x86pae")
    info = write_dump(tmp_path / f"{arch}.dmp", space, 1)
    with KernelDump.open(info.path) as d:
        assert d.read_virtual(va, PAGE) == space.read_virtual(va, PAGE)


# -- LeechCore: the same physical pages -------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "dump_type"), [(k, t) for k in ("arm64", "x64") for t in (1, 5, 6)])
def test_leechcore_reads_the_same_physical_pages(tmp_path: Path, kind: str, dump_type: int) -> None:
    leechcorepyc = pytest.importorskip("leechcorepyc", reason="LeechCore (pip install memprocfs) is not installed")
    space, base = _world(kind, "scattered")
    _populate(space, base, seed=11)
    info = _write(space, tmp_path / f"lc-{kind}-{dump_type}.dmp", dump_type)
    mem = space.memory
    pfns = sorted(set(mem.explicit_pfns()) | set(info.sample_stored_pfns(64, seed=dump_type)))
    try:
        lc = leechcorepyc.LeechCore(f"file://{info.path}")
    except Exception as exc:  # the C library cannot be loaded here: say why
        pytest.skip(f"LeechCore cannot open files here: {exc}")
    try:
        got = {r["addr"] >> 12: r["data"] for r in lc.read_scatter([p * PAGE for p in pfns])}
    finally:
        lc.close()
    with KernelDump.open(info.path) as d:
        for pfn in pfns:
            expected = mem.read(pfn * PAGE, PAGE)
            assert got.get(pfn) == expected, f"LeechCore, PFN {pfn:#x}"
            assert d.read_physical(pfn * PAGE, PAGE) == expected, f"dbgauto, PFN {pfn:#x}"
        absent = next(p for p in range(1, 0x100) if not mem.is_present(p)) if dump_type == 6 else None
    if absent is not None:
        lc = leechcorepyc.LeechCore(f"file://{info.path}")
        try:
            assert lc.read_scatter([absent * PAGE]) == []  # neither reader invents a page the dump lacks
        finally:
            lc.close()


def test_page_sizes_of_the_arm64_builder() -> None:
    assert Arm64AddressSpace().page_sizes == (PAGE_4K, PAGE_2M, PAGE_1G)
