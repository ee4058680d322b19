"""Benchmark the small-dump reader: one full parse of the real sample, and `dbgauto info --json` over 1,000 copies.

Targets (issue 3): full parse (every section, derived addresses, identity, stack scan, to_dict) ≤ 5 ms;
`info --json` logic in-process on one core ≥ 500 files/s. Figures are the best of several rounds (the machine is
shared), with the median shown too. Usage: ``python benchmarks/bench_triage.py [DUMP] [--files N]``.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import rounds

from dbgauto.kdump.triage import TriageDump
from dbgauto.kernel.smalldump import kernel_view, parts_from_triage

SHARED = Path(os.environ.get("DBGAUTO_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))
DEFAULT_DUMP = SHARED / "dumps" / "triage_x64.dmp"


def bench_parse(path: Path) -> None:
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:

        def parse_only() -> TriageDump:
            return TriageDump.parse_buffer(mm, path=path, is_64bit=True)

        def full() -> dict[str, object]:
            tri = parse_only()
            _ = kernel_view(parts_from_triage(tri))
            return tri.to_dict()  # includes the stack scan, identity, KDBG fields, data-block summary

        def full_blocks() -> dict[str, object]:
            return parse_only().to_dict(include_data_blocks=True)

        for name, fn in (
            ("parse (all sections)", parse_only),
            ("parse + view + identity + to_dict", full),
            ("the same with all 1831 data-block rows", full_blocks),
        ):
            fn()
            r = rounds(fn, number=100, repeat=7)
            print(f"{name:<46} best {min(r) * 1e3:6.3f} ms   median {statistics.median(r) * 1e3:6.3f} ms")


def bench_info(path: Path, n_files: int) -> None:
    """Time the real `dbgauto info --json` process over ``n_files`` links to the dump, pinned to one core."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="bench_triage_") as tmp:
        files = []
        for i in range(n_files):
            target = Path(tmp) / f"copy{i:04d}.dmp"
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
            files.append(str(target))
        cmd = [sys.executable, "-m", "dbgauto", "info", "--json", *files]
        pin = (
            (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
            if hasattr(os, "sched_setaffinity")
            else None
        )
        times = []
        size = 0
        for _ in range(4):
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, check=True, preexec_fn=pin)
            times.append(time.perf_counter() - t0)
            size = len(out.stdout)
            json.loads(out.stdout)  # the output is one valid JSON list
        best = min(times[1:])  # the first run warms the page cache
        median_rate = n_files / statistics.median(times[1:])
        print(
            f"dbgauto info --json process, {n_files} files, one core: best {best:.3f} s = "
            f"{n_files / best:,.0f} files/s (median {median_rate:,.0f}; JSON {size / 1e6:.1f} MB; includes start-up)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dump", nargs="?", type=Path, default=DEFAULT_DUMP)
    ap.add_argument("--files", type=int, default=1000)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}; dump {args.dump} ({args.dump.stat().st_size:,} bytes)")
    bench_parse(args.dump)
    bench_info(args.dump, args.files)


if __name__ == "__main__":
    main()
