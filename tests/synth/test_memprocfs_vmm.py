"""MemProcFS's VMM (PyPI ``memprocfs``), a second reader of *virtual* memory, on generated x64 and ARM64 worlds.

VMM initialises as it does on a real Windows dump (no symbols, offline: ``-disable-symbolserver``) only when the
world holds what its initialisation checks (``dumpsynth.vmmkernel``: self-mapped DTB, ntoskrnl's PE header and
exports, a linked EPROCESS list it can fuzz offsets from). Then, for kernel and user addresses, 4 KiB pages,
2 MiB pages / ARM64 level-2 blocks, a 1 GiB page / ARM64 level-1 block and transition pages, the bytes and
physical addresses VMM gives must equal the world's own record (``AddressSpace.read_virtual`` / ``translate``,
never a reader's output) and what dbgauto's ``read_virtual`` / ``translate`` give.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dbgauto_testkit.dumpsynth import (
    PAGE_1G,
    PAGE_2M,
    AddressSpace,
    DumpInfo,
    clustered_present_runs,
    pattern_page,
    write_dump,
)
from dbgauto_testkit.dumpsynth.paging_arm64 import Arm64AddressSpace, write_arm64_dump
from dbgauto_testkit.dumpsynth.transition import make_transition
from dbgauto_testkit.dumpsynth.vmmkernel import VmmKernel, furnish_vmm_kernel

from dbgauto.kdump.reader import KernelDump

memprocfs = pytest.importorskip("memprocfs", reason="MemProcFS (pip install memprocfs) is not installed")

PAGE = 0x1000
SMALL_RAM = 256 << 20
BIG_RAM = (2048 + 2) << 20  # a 1 GiB-aligned block [1 GiB, 2 GiB) fits
KBASE = 0xFFFF_9000_0000_0000
UBASE = 0x0000_7FF6_A000_0000
VMM_ARGS = ("-disable-symbolserver", "-disable-python", "-norefresh", "-waitinitialize")


@dataclass
class World:
    space: AddressSpace
    kernel: VmmKernel
    info: DumpInfo
    probes: list[tuple[int, int]]  # (va, size): mapped bytes to compare
    transitions: list[int]


def _build(tmp_path: Path, kind: str, dump_type: int, *, huge: bool) -> World:
    ram = BIG_RAM if huge else SMALL_RAM
    if kind == "arm64":
        space: AddressSpace = Arm64AddressSpace(ram_bytes=ram, placement="scattered", seed=21)
    else:
        space = AddressSpace("x64", ram_bytes=ram, placement="scattered", seed=22)
    rng = random.Random(dump_type)
    probes: list[tuple[int, int]] = []
    if huge:  # 1 GiB page / level-1 block, first: its aligned frames must still be free
        va = KBASE + (1 << 38)
        space.map(va, size=PAGE, page_size=PAGE_1G)
        for off in (0, 0x2345_6000, PAGE_1G - PAGE):
            space.write_virtual(va + off, pattern_page(off >> 12, b"C1G"))
            probes.append((va + off + 0x10, 0x400))
        probes.append((va + PAGE_1G - 0x10, 0x10))
    for i in range(48):  # 4 KiB pages spread over 64 GiB of kernel VA and 4 GiB of user VA
        va = (KBASE + rng.randrange(0, 1 << 36, PAGE)) if i % 3 else (UBASE + rng.randrange(0, 1 << 32, PAGE))
        if space.translate(va) is None:
            space.map(va, pattern_page(i, b"K4K" if va >= KBASE else b"U4K"))
            probes.append((va + rng.randrange(0, 0xF00), 0x100))
    for va in (KBASE + (1 << 37), UBASE + (1 << 33)):  # 2 MiB page / level-2 block, kernel and user
        space.map(va, size=PAGE_2M, page_size=PAGE_2M)
        for off in (0, 0x10_0000 + 0x345, PAGE_2M - PAGE):
            space.write_virtual(va + off, pattern_page(off >> 12, b"B2M"))
            probes.append((va + off, 0x200))
        probes.append((va + 0x7F80, 0x100))  # crosses a 4 KiB boundary inside the block
    transitions = []
    for j in range(2):  # valid-in-transition pages: the frame still holds the bytes
        va = KBASE + (1 << 35) + j * PAGE
        space.map(va, pattern_page(200 + j, b"TRANS"))
        make_transition(space, va)
        transitions.append(va)
    kernel = furnish_vmm_kernel(space)
    mem = space.memory
    if dump_type == 5:
        mem.mark_all_ram_present()
    elif dump_type == 6:  # a kernel dump holds more than the mapped pages; LeechCore wants >= 16 MiB files
        mem.add_present_runs(clustered_present_runs(ram // PAGE, 0.08 if not huge else 0.01, seed=3, first_pfn=0x100))
    opts = {"align_first_page": True} if dump_type != 1 else {}
    path = tmp_path / f"vmm-{kind}-{dump_type}.dmp"
    writer = write_arm64_dump if kind == "arm64" else write_dump
    info = writer(path, space, dump_type, fields=kernel.header_fields(), **opts)
    return World(space, kernel, info, probes, transitions)


def _vmm(path: Path) -> Iterator[object]:
    try:
        vmm = memprocfs.Vmm(["-device", str(path), *VMM_ARGS])
    except Exception as exc:  # the native library cannot run here, or VMM refused the world: say which
        pytest.fail(f"MemProcFS VMM did not initialise on {path.name}: {exc}")
    try:
        yield vmm
    finally:
        vmm.close()


CASES = [(k, t, False) for k in ("x64", "arm64") for t in (1, 5, 6)] + [(k, 6, True) for k in ("x64", "arm64")]


@pytest.mark.parametrize(("kind", "dump_type", "huge"), CASES)
def test_vmm_reads_the_same_virtual_bytes(tmp_path: Path, kind: str, dump_type: int, huge: bool) -> None:
    w = _build(tmp_path, kind, dump_type, huge=huge)
    space = w.space
    for vmm in _vmm(w.info.path):
        assert sorted((p.pid, p.name) for p in vmm.process_list()) == sorted(
            (pid, name) for pid, name, _, _ in w.kernel.processes
        )
        assert vmm.kernel.build == w.kernel.build
        system = vmm.process(4)
        assert system.memory.read(w.kernel.system_eprocess + w.kernel.eprocess["ImageFileName"], 6) == b"System"
        with KernelDump.open(w.info.path) as d:
            assert d.summary()["paging"] == ("arm64" if kind == "arm64" else "x64")
            for va, size in w.probes:
                expected = space.read_virtual(va, size)
                assert system.memory.read(va, size) == expected, f"VMM, {va:#x}"
                assert d.read_virtual(va, size) == expected, f"dbgauto, {va:#x}"
                assert system.memory.virt2phys(va) == space.translate(va) == d.translate(va), hex(va)
            for m in space.mappings():  # every valid leaf the world made (transition entries are not valid)
                if m.va in w.transitions:
                    continue
                assert system.memory.virt2phys(m.va) == m.pa == d.translate(m.va), hex(m.va)


@pytest.mark.parametrize("kind", ["x64", "arm64"])
def test_vmm_user_process_reads_its_peb(tmp_path: Path, kind: str) -> None:
    """A user process (VMM walks it user-only: x64 U/S bits at every level, ARM64 lower-half VAs)."""
    w = _build(tmp_path, kind, 6, huge=False)
    smss = next(p for p in w.kernel.processes if p[1] == "smss.exe")
    for vmm in _vmm(w.info.path):
        proc = vmm.process(smss[0])
        assert proc.memory.read(smss[3] + 0x118, 10) == w.space.read_virtual(smss[3] + 0x118, 10)
        with pytest.raises(RuntimeError):  # a user-only walk refuses kernel pages
            proc.memory.virt2phys(w.kernel.system_eprocess)


@pytest.mark.parametrize("kind", ["x64", "arm64"])
def test_vmm_and_dbgauto_read_transition_pages(tmp_path: Path, kind: str) -> None:
    w = _build(tmp_path, kind, 6, huge=False)
    for vmm in _vmm(w.info.path):
        system = vmm.process(4)
        with KernelDump.open(w.info.path) as d:
            for va in w.transitions:
                expected = w.space.read_virtual(va, PAGE)
                assert d.read_virtual(va, PAGE) == expected
                assert system.memory.read(va, PAGE) == expected, hex(va)


def test_vmm_without_a_windows_kernel_reads_x64_through_a_given_dtb(tmp_path: Path) -> None:
    """A bare world (tables and pages, no kernel): VMM's Windows init fails ("Unable to verify crash-dump supplied
    DTB"), and with ``-dtb`` it falls back to one "unknown_process" (PID 1) on the x64 memory model
    (``VmmProcUserCR3TryInitialize64``) whose reads are still a second walk of the same tables. ARM64 has no
    such fallback (it is x64-only), which is why the ARM64 worlds above carry a kernel."""
    space = AddressSpace("x64", ram_bytes=SMALL_RAM, placement="scattered", seed=9)
    probes = [KBASE + 0x1234_5000, UBASE + 0x6000]
    for i, va in enumerate(probes):
        space.map(va, pattern_page(i, b"BARE"))
    big = KBASE + (1 << 37)
    space.map(big, size=PAGE_2M, page_size=PAGE_2M)
    space.write_virtual(big + 0x1F_F000, pattern_page(7, b"B2M"))
    probes.append(big + 0x1F_F000)
    space.memory.mark_all_ram_present()
    info = write_dump(tmp_path / "bare.dmp", space, 1)
    with pytest.raises(Exception, match="Initialization of vmm failed"):
        memprocfs.Vmm(["-device", str(info.path), *VMM_ARGS])
    vmm = memprocfs.Vmm(["-device", str(info.path), "-dtb", hex(space.dtb), *VMM_ARGS])
    try:
        assert [(p.pid, p.name) for p in vmm.process_list()] == [(1, "unknown_process")]
        proc = vmm.process(1)
        with KernelDump.open(info.path) as d:
            for va in probes:
                assert proc.memory.read(va, PAGE) == space.read_virtual(va, PAGE) == d.read_virtual(va, PAGE)
    finally:
        vmm.close()
