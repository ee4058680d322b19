"""Write a small, varied set of synthetic kernel dumps into a folder (sample data for the README demo and tests).

    python scripts/make_synth_dumps.py OUTDIR [--force] [--seed N] [--ram-mib N]

Every file is a sparse dumpsynth dump with real page tables and a plausible header (bug check, build,
processors, time, comment); together they cover 64-bit types 1, 5 (Complete and Active) and 6, 32-bit PAE
type 1 and non-PAE type 5. They carry no Windows kernel structures (no KDBG, module list or threads):
they exercise the format layer, not analysis.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dbgauto_testkit.dumpsynth import (
    PAGE_2M,
    PAGE_4M,
    AddressSpace,
    DumpInfo,
    HeaderFields,
    clustered_present_runs,
    write_dump,
)

__all__ = ["SAMPLES", "Sample", "main", "make_samples"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample dump: file name, machine, DumpType and the header story it tells."""

    name: str
    arch: str
    dump_type: int
    build: int
    bugcheck: int
    params: tuple[int, int, int, int]
    processors: int
    comment: str
    active_fraction: float | None = None  # type 5 only: None = all RAM (Complete), else Active
    attributes: int | None = None
    placement: str = "sequential"
    large_pages: bool = False
    product_type: int = 1  # 1 WinNt (workstation), 3 Server


SAMPLES: tuple[Sample, ...] = (
    Sample(
        "x64-complete-type1.dmp",
        "x64",
        1,
        17763,
        0x3B,  # SYSTEM_SERVICE_EXCEPTION
        (0xC0000005, 0xFFFFF8016A3B12C4, 0xFFFFA88F1D6E7920, 0),
        4,
        "Complete memory dump (run list), Windows Server 2019",
        product_type=3,
    ),
    Sample(
        "x64-complete-type5.dmp",
        "x64",
        5,
        19045,
        0xD1,  # DRIVER_IRQL_NOT_LESS_OR_EQUAL
        (0xFFFFB20F6C3E1000, 0x2, 0x0, 0xFFFFF80368A1123A),
        8,
        "Complete memory dump (bitmap, all RAM), Windows 10 22H2",
        placement="scattered",
        large_pages=True,
    ),
    Sample(
        "x64-active-type5.dmp",
        "x64",
        5,
        22621,
        0x133,  # DPC_WATCHDOG_VIOLATION
        (0x1, 0x1E00, 0xFFFFF8046C4FB320, 0x0),
        16,
        "Active memory dump (filtered bitmap), Windows 11 22H2",
        active_fraction=0.4,
        attributes=0x40,  # FilterDumpFile
        placement="scattered",
    ),
    Sample(
        "x64-kernel-type6.dmp",
        "x64",
        6,
        19041,
        0x50,  # PAGE_FAULT_IN_NONPAGED_AREA
        (0xFFFFD38B2C4E0008, 0x0, 0xFFFFF8035A7F5F10, 0x2),
        4,
        "Kernel or Automatic memory dump, Windows 10 2004",
        large_pages=True,
    ),
    Sample(
        "x86pae-complete-type1.dmp",
        "x86pae",
        1,
        7601,
        0x0A,  # IRQL_NOT_LESS_OR_EQUAL
        (0x00000004, 0x2, 0x0, 0x82A8C2E5),
        2,
        "Complete memory dump, Windows 7 SP1 x86 (PAE)",
        large_pages=True,
    ),
    Sample(
        "x86-complete-type5.dmp",
        "x86",
        5,
        2600,
        0x7E,  # SYSTEM_THREAD_EXCEPTION_NOT_HANDLED
        (0xC0000005, 0x804E3A1B, 0xF8A3FB2C, 0xF8A3F828),
        1,
        "Complete memory dump (bitmap), Windows XP x86 (non-PAE)",
        placement="scattered",
        large_pages=True,
    ),
)


def _build(sample: Sample, ram_mib: int, seed: int) -> AddressSpace:
    rng = random.Random(f"{sample.name}-{seed}")
    is64 = sample.arch == "x64"
    space = AddressSpace(sample.arch, ram_bytes=ram_mib << 20, placement=sample.placement, seed=seed)
    nt_base = 0xFFFFF80312200000 if is64 else 0x82A00000
    space.map(nt_base, b"MZ\x90\x00" + rng.randbytes(0x3FFC), size=0x40000)  # an "image", zeros after 16 KiB
    space.map(nt_base + 0x800000, rng.randbytes(0x6000))  # pool-ish data
    space.map(0x00007FF7A0000000 if is64 else 0x00400000, b"MZ" + rng.randbytes(0x1FFE))  # a user image
    if sample.large_pages:
        big = PAGE_4M if sample.arch == "x86" else PAGE_2M
        base = (nt_base + 0x4000000) // big * big
        space.map(base, rng.randbytes(0x2000), size=big, page_size=big)
    if sample.dump_type == 5:
        if sample.active_fraction is None:
            space.memory.mark_all_ram_present()
        else:
            ram = space.memory.ram_runs
            end = ram[-1][0] + ram[-1][1]
            present = clustered_present_runs(end, sample.active_fraction, seed, cluster_pages=64, first_pfn=0x100)
            space.memory.add_present_runs(present)
    return space


def _fields(sample: Sample, space: AddressSpace, seed: int) -> HeaderFields:
    rng = random.Random(f"{sample.name}-fields-{seed}")
    when = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randrange(86_400 * 60))
    pc = sample.params[3] if sample.bugcheck != 0x133 else sample.params[2]
    regs = {"rip": pc, "rsp": 0xFFFFD00C2A4E6F88} if space.arch.is_64bit else {"eip": pc, "esp": 0xB2F4FBD4}
    return HeaderFields(
        minor_version=sample.build,
        bugcheck_code=sample.bugcheck,
        bugcheck_parameters=sample.params,
        number_processors=sample.processors,
        comment=sample.comment,
        attributes=sample.attributes,
        product_type=sample.product_type,
        system_time=when,
        system_uptime=rng.randrange(10**9, 10**13),
        context=regs,
    )


def make_samples(out_dir: Path | str, *, seed: int = 1, ram_mib: int = 256, overwrite: bool = False) -> list[DumpInfo]:
    """Write every sample of :data:`SAMPLES` into ``out_dir``; returns what was written."""
    out = Path(out_dir)
    written = []
    for sample in SAMPLES:
        space = _build(sample, ram_mib, seed)
        fields = _fields(sample, space, seed)
        written.append(write_dump(out / sample.name, space, sample.dump_type, fields=fields, overwrite=overwrite))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="folder to write the dumps into (created if missing)")
    parser.add_argument("--force", action="store_true", help="replace existing files")
    parser.add_argument("--seed", type=int, default=1, help="seed for contents and physical placement")
    parser.add_argument("--ram-mib", type=int, default=256, help="RAM of each synthetic machine (MiB, >= 16)")
    args = parser.parse_args(argv)
    if args.ram_mib < 16 or args.ram_mib > 4096:
        parser.error("--ram-mib must be between 16 and 4096")
    try:
        infos = make_samples(args.outdir, seed=args.seed, ram_mib=args.ram_mib, overwrite=args.force)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for info in infos:
        on_disk = info.path.stat().st_blocks * 512
        print(
            f"{info.path}  type {info.dump_type}  {info.arch.value:6}  {info.file_size / 2**20:8.1f} MiB"
            f" ({on_disk / 2**10:.0f} KiB on disk)  {info.stored_pages} pages"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
