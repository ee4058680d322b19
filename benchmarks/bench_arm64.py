#!/usr/bin/env python3
"""ARM64 benchmarks: translation per page vs x64, and conversion of a 256 GiB sparse ARM64 Kernel bitmap dump.

1. Translation (target: ARM64 within 1.5x of x64): two synthetic worlds with the same 4 KiB mappings (scattered
   frames), written as Complete dumps; ``KernelDump.translate`` over every mapped page, best of five rounds.
2. Conversion (target at 256 GiB: <= 0.5 s warm, <= 60 MB peak RSS, like x64): a synthetic kernel world
   (``dumpinflate.build_kworld``, 4 processors) on a machine with ``--gib`` GiB of RAM, ``--present`` of it marked
   present in the bitmap (sparse file), written as DumpType 6, for ARM64 and, in the same run, x64. Each
   conversion runs in a fresh interpreter (imports not measured): "cold" is the first ``convert_dump`` after the
   file's pages were dropped from the page cache (``posix_fadvise DONTNEED``; tmpfs ignores it), "warm" the
   second; peak RSS is the child's own ``VmHWM`` (``benchmarks/peakmem.py``: ``ru_maxrss``
   survives exec and would report the parent's world).

Run: python benchmarks/bench_arm64.py [--gib 256] [--present 0.05] [--dir DIR] [--skip-translate]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbgauto_testkit import dumpinflate
from dbgauto_testkit.dumpsynth import AddressSpace, clustered_present_runs, write_dump
from dbgauto_testkit.dumpsynth.paging_arm64 import Arm64AddressSpace, write_arm64_dump
from peakmem import peak_rss_bytes

from dbgauto.kdump.reader import KernelDump

PAGES = 4096
BASE = 0xFFFF_9000_0000_0000
GiB = 1 << 30
MB = 1 << 20
TARGET_WARM = 0.5
TARGET_RSS = 60 * MB


def _time(path: Path, vas: list[int]) -> float:
    with KernelDump.open(path) as d:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for va in vas:
                d.translate(va)
            best = min(best, time.perf_counter() - t0)
    return best / len(vas) * 1e6


def translation(tmp: Path) -> None:
    vas = [BASE + i * 0x7000 for i in range(PAGES)]
    x64 = AddressSpace("x64", ram_bytes=256 << 20, placement="scattered", seed=1)
    arm = Arm64AddressSpace(ram_bytes=256 << 20, placement="scattered", seed=1)
    for va in vas:
        x64.map(va, b"x")
        arm.map(va, b"a")
    px = write_dump(tmp / "x64.dmp", x64, 1).path
    pa = write_arm64_dump(tmp / "arm64.dmp", arm, 1).path
    tx, ta = _time(px, vas), _time(pa, vas)
    print(f"x64   translate: {tx:.2f} us/page ({PAGES} pages, best of 5)")
    print(f"ARM64 translate: {ta:.2f} us/page")
    print(f"ratio ARM64/x64: {ta / tx:.2f} (target <= 1.5)")
    px.unlink()
    pa.unlink()


def child(src: str, out: str) -> None:
    """In a fresh interpreter: import first (not measured), then a cold and a warm conversion."""
    from dbgauto.engines.jobs import convert_dump

    if hasattr(os, "posix_fadvise"):
        fd = os.open(src, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    t0 = time.perf_counter()
    res = convert_dump(src, out, overwrite=True)
    cold = time.perf_counter() - t0
    t1 = time.perf_counter()
    convert_dump(src, out, overwrite=True)
    warm = time.perf_counter() - t1
    rss = peak_rss_bytes()
    print(json.dumps({"cold": cold, "warm": warm, "rss": rss, "out_size": res.size, "warnings": res.warnings}))


def conversion(folder: Path, gib: int, present: float) -> bool:
    print(f"conversion: {gib} GiB RAM, {present:.0%} present, DumpType 6, 4 processors; folder {folder}")
    print(
        f"{'arch':>6} {'file':>9} {'on disk':>9} {'build s':>8} {'cold s':>7} {'warm s':>7} {'RSS MB':>7} "
        f"{'small dump':>11}  verdict"
    )
    ok = True
    for arch in ("arm64", "x64"):
        t0 = time.perf_counter()
        w = dumpinflate.build_kworld(arch, seed=gib, processors=4, ram_bytes=gib * GiB)
        w.space.memory.add_present_runs(clustered_present_runs(gib * GiB // 0x1000, present, seed=gib, first_pfn=0x100))
        src = folder / f"{arch}_{gib}g.dmp"
        dumpinflate.write_kworld(src, arch, 6, world=w, overwrite=True)
        build = time.perf_counter() - t0
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(src), str(folder / f"{arch}_{gib}g.mini.dmp")],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        good = r["warm"] <= TARGET_WARM and r["rss"] <= TARGET_RSS
        ok = ok and good
        st = src.stat()
        print(
            f"{arch:>6} {st.st_size / GiB:>8.2f}G {st.st_blocks * 512 / MB:>8.1f}M {build:>8.1f} {r['cold']:>7.3f} "
            f"{r['warm']:>7.3f} {r['rss'] / MB:>7.1f} {r['out_size']:>11}  {'ok' if good else 'MISSED'}"
        )
        src.unlink()
        (folder / f"{arch}_{gib}g.mini.dmp").unlink()
    print(f"targets: warm <= {TARGET_WARM}s, peak RSS <= {TARGET_RSS // MB} MB (both architectures)")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=int, default=256, help="RAM of the converted machine in GiB")
    ap.add_argument("--present", type=float, default=0.05, help="fraction of RAM present in the bitmap")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--skip-translate", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("SRC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if not args.skip_translate:
            translation(Path(tmp))
        ok = conversion(Path(tmp), args.gib, args.present)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
