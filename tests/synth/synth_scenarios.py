"""Small synthetic dumps shared by the dumpsynth tests and the peer cross-checks (kdmp-parser, vol3, dbgauto).

Each scenario is a machine built with dumpsynth (random, seeded page contents so every page differs), written
as one dump, plus the probe addresses a reader must get right. RAM is 64 MiB (4 GiB for 1 GiB pages),
sparse on disk, so a dump costs a few hundred KiB of real disk.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from dbgauto_testkit.dumpsynth import (
    PAGE_1G,
    PAGE_2M,
    PAGE_4K,
    PAGE_4M,
    AddressSpace,
    DumpInfo,
    HeaderFields,
    write_dump,
)

KERNEL64 = 0xFFFFF80312340000
USER64 = 0x00007FF6A0001000
KERNEL32 = 0x82A01000
USER32 = 0x00401000

LAYOUTS = ("small", "scattered", "large", "huge")  # huge = 1 GiB pages, x64 only


@dataclass
class Scenario:
    """A written dump, the address space it came from, and what to probe."""

    name: str
    space: AddressSpace
    info: DumpInfo
    fields: HeaderFields
    virtual_probes: list[int] = field(default_factory=list)  # page-aligned VAs that are mapped
    raw_pfns: list[int] = field(default_factory=list)  # pages written physically, not mapped
    absent_pfns: list[int] = field(default_factory=list)  # PFNs the dump does not store

    @property
    def path(self) -> Path:
        return self.info.path


def build_scenario(out_dir: Path, arch: str, dump_type: int, layout: str, *, seed: int = 7) -> Scenario:
    rng = random.Random(f"{arch}-{dump_type}-{layout}-{seed}")
    is64 = arch == "x64"
    ram = (4 << 30) if layout == "huge" else (64 << 20)
    placement = "sequential" if layout == "small" else "scattered"
    space = AddressSpace(arch, ram_bytes=ram, placement=placement, seed=seed)
    kernel, user = (KERNEL64, USER64) if is64 else (KERNEL32, USER32)
    probes: list[int] = []

    def put(va: int, length: int, page_size: int = PAGE_4K) -> None:
        space.map(va, rng.randbytes(length), page_size=page_size)
        first = va - va % PAGE_4K
        last = (va + length - 1) - (va + length - 1) % PAGE_4K
        probes.extend(sorted({first, first + PAGE_4K if first + PAGE_4K <= last else first, last}))

    put(kernel + 0x10, 3 * PAGE_4K + 0x100)  # spans four small pages, unaligned start
    put(user, 0x800)
    if layout in ("large", "huge"):
        big = PAGE_4M if arch == "x86" else PAGE_2M
        base = (kernel + 0x4000000) - (kernel + 0x4000000) % big
        space.map(base, size=big, page_size=big)
        for off in (0, 0x1234, big // 2, big - 0x1000):  # data only on a few frames; the rest reads as zeros
            space.write_virtual(base + off, rng.randbytes(0x300))
        probes.extend([base, base + 0x1000, base + big // 2, base + big - 0x1000])
    if layout == "huge":
        giant = 0xFFFFF88000000000
        space.map(giant, size=PAGE_1G, page_size=PAGE_1G)
        for off in (0, 0x201000, PAGE_1G // 2 + 0x5000, PAGE_1G - 0x1000):
            space.write_virtual(giant + off, rng.randbytes(0x1000))
        probes.extend([giant, giant + 0x201000, giant + PAGE_1G // 2 + 0x5000, giant + PAGE_1G - 0x1000])
    raw = space.alloc_frames(1)
    space.write_physical(raw + 0x80, rng.randbytes(0x200))
    if dump_type == 5:
        space.memory.mark_all_ram_present()
    absent = [0xA0]  # the legacy hole below 1 MiB is never RAM
    if dump_type == 6:
        last_ram = space.memory.ram_runs[-1]
        candidate = last_ram[0] + last_ram[1] - 1
        while space.memory.is_present(candidate):
            candidate -= 1
        absent.append(candidate)
    pc = "r" if is64 else "e"
    fields = HeaderFields(
        bugcheck_code=0x50,
        bugcheck_parameters=(0xFFFFF80000001234, 0, 0xFFFFF80312345678, 2) if is64 else (0x80001234, 0, 0x82A45678, 2),
        comment=f"dumpsynth {arch} type {dump_type} {layout}",
        number_processors=2,
        attributes=0x40 if dump_type == 5 else None,
        context={f"{pc}ip": kernel + 0x20, f"{pc}sp": kernel + 0x800},
    )
    name = f"{arch}-t{dump_type}-{layout}"
    info = write_dump(out_dir / f"{name}.dmp", space, dump_type, fields=fields)
    return Scenario(name, space, info, fields, probes, [raw // PAGE_4K], absent)
