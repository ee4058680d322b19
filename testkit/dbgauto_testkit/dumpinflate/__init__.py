"""dumpinflate: rebuild a faithful large kernel dump from a real Windows-written small memory dump.

There is no real Complete or Kernel memory dump we may use, so this builds one from real bytes: every byte
``../shared/dumps/triage_x64.dmp`` captured is placed at its real virtual address (data blocks, KPRCB,
ETHREAD, EPROCESS, stack, KDBG), the structures the small dump keeps in its own form are put back in the form
the kernel keeps them (see :mod:`.world`), page tables are built under the header's DTB, and dumpsynth writes a
Complete (DumpType 1) or Kernel bitmap (DumpType 6) 64-bit dump. Test and benchmark tooling, not product code:
the small dump is parsed here from the spec (:mod:`.smalldump`), independently of dbgauto.

API::

    inflate(small_path, out_path, *, dump_type=1 | 2 | 5 | 6, encoded=False, placement="sequential" | "scattered",
            large_pages=False, ram_bytes=64 MiB, present_fraction=0.0, seed=0, overwrite=False) -> Inflated
    Inflated(path, dump_type, world: World, info: dumpsynth.DumpInfo)

``encoded=True`` stores the KDBG encoded (Windows 8+ x64) with KiWaitNever/KiWaitAlways = DEFAULT_KEYS and a
KdCopyDataBlock-like code pattern in nt's image from which a symbol-less decoder finds them (``world.keys`` has
the values for decoders that take them explicitly). ``present_fraction`` marks extra zero pages present in a
bitmap dump (sparse holes), so a padded machine (16/64/256 GiB ``ram_bytes``) looks like a real kernel dump.

Without the real small dump, :mod:`.kworld` builds plausible kernel worlds from scratch (x64 19041, x86 PAE,
x86 non-PAE, ARM64 26100 (real public-symbol offsets) on AArch64 tables; deterministic from a seed)::

    build_kworld(arch="x64" | "x86pae" | "x86" | "arm64", *, seed=0, bugcheck=0xD1, culprit=None, build=None,
                 processors=2, encoded=False, modules=None, system_time=None, uptime_seconds=None,
                 ram_bytes=32 MiB) -> KWorld
    write_kworld(path, arch="x64", dump_type=1 | 5 | 6, *, overwrite=False, world=None, **build_options)
        -> KWorldDump(path, dump_type, world, info)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dbgauto_testkit.dumpsynth import DumpInfo, HeaderFields, clustered_present_runs, write_dump

from .kworld import BUGCHECKS, KWorld, KWorldDump, build_kworld, write_kworld
from .smalldump import SmallDump, parse
from .world import DEFAULT_KEYS, POOL_BASE, World, build_space, build_world, encode_kdbg

__all__ = [
    "BUGCHECKS",
    "DEFAULT_KEYS",
    "POOL_BASE",
    "Inflated",
    "KWorld",
    "KWorldDump",
    "SmallDump",
    "World",
    "build_kworld",
    "build_space",
    "build_world",
    "encode_kdbg",
    "header_fields",
    "inflate",
    "parse",
    "write_kworld",
]


@dataclass
class Inflated:
    path: Path
    dump_type: int
    world: World
    info: DumpInfo


def header_fields(sd: SmallDump) -> HeaderFields:
    """The large dump's header: the small dump's crash facts, DumpType and the run table set by the writer."""
    return HeaderFields(
        major_version=sd.h32(0x8),
        minor_version=sd.h32(0xC),
        directory_table_base=sd.dtb,
        pfn_database=sd.h64(0x18),
        ps_loaded_module_list=sd.h64(0x20),
        ps_active_process_head=sd.h64(0x28),
        number_processors=sd.number_processors,
        bugcheck_code=sd.h32(0x38),
        bugcheck_parameters=(sd.h64(0x40), sd.h64(0x48), sd.h64(0x50), sd.h64(0x58)),
        kd_debugger_data_block=sd.kdbg_va,
        context=sd.context,
        exception=sd.exception,
        kd_secondary_version=sd.header[0x104D],
        product_type=sd.h32(0x1040),
        suite_mask=sd.h32(0x1044),
        writer_status=sd.h32(0x1048),
        system_time=sd.h64(0xFA8),
        system_uptime=sd.h64(0x1030),
    )


def inflate(
    small_path: os.PathLike[str] | str,
    out_path: os.PathLike[str] | str,
    *,
    dump_type: int = 1,
    encoded: bool = False,
    placement: str = "sequential",
    large_pages: bool = False,
    ram_bytes: int = 64 << 20,
    present_fraction: float = 0.0,
    seed: int = 0,
    overwrite: bool = False,
    small: SmallDump | None = None,
) -> Inflated:
    """Write the inflated dump of ``small_path`` to ``out_path``."""
    sd = small if small is not None else parse(small_path)
    world = build_world(sd, encoded=encoded)
    space = build_space(world, ram_bytes=ram_bytes, placement=placement, large_pages=large_pages, seed=seed)
    if present_fraction > 0:
        total = ram_bytes // 0x1000
        space.memory.add_present_runs(clustered_present_runs(total, present_fraction, seed=seed, first_pfn=0x100))
    # 2: a classic Kernel (summary) dump, written with the modern bitmap sub-header
    info = write_dump(out_path, space, dump_type, fields=header_fields(sd), overwrite=overwrite)
    return Inflated(Path(out_path), dump_type, world, info)
