"""ARM64 translation per page vs x64 (target: ARM64 within 1.5x of x64).

Builds two synthetic worlds with the same 4 KiB mappings (scattered frames), writes Complete dumps, and
times ``KernelDump.translate`` over every mapped page, best of five rounds. Prints µs per page and the ratio.
Run: python benchmarks/bench_arm64.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from dbgauto_testkit.dumpsynth import AddressSpace, write_dump
from dbgauto_testkit.dumpsynth.paging_arm64 import Arm64AddressSpace, write_arm64_dump

from dbgauto.kdump.reader import KernelDump

PAGES = 4096
BASE = 0xFFFF_9000_0000_0000


def _time(path: Path, vas: list[int]) -> float:
    with KernelDump.open(path) as d:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for va in vas:
                d.translate(va)
            best = min(best, time.perf_counter() - t0)
    return best / len(vas) * 1e6


def main() -> None:
    vas = [BASE + i * 0x7000 for i in range(PAGES)]
    with tempfile.TemporaryDirectory() as tmp:
        x64 = AddressSpace("x64", ram_bytes=256 << 20, placement="scattered", seed=1)
        arm = Arm64AddressSpace(ram_bytes=256 << 20, placement="scattered", seed=1)
        for va in vas:
            x64.map(va, b"x")
            arm.map(va, b"a")
        px = write_dump(Path(tmp) / "x64.dmp", x64, 1).path
        pa = write_arm64_dump(Path(tmp) / "arm64.dmp", arm, 1).path
        tx, ta = _time(px, vas), _time(pa, vas)
    print(f"x64   translate: {tx:.2f} us/page ({PAGES} pages, best of 5)")
    print(f"ARM64 translate: {ta:.2f} us/page")
    print(f"ratio ARM64/x64: {ta / tx:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
