"""Benchmark LZX cabinet decoding (issue 11: Microsoft's server serves ``name.pd_`` as LZX cabinets).

Builds multi-MB LZX:21 cabinets with the testkit encoder (checked by cabextract first), then times
dbgauto's pure-Python decoder (``extract_single``) and, in the same run on the same file, Debian's
cabextract (libmspack, C) writing to a pipe. Payloads: PDB-shaped records (``pdb_like``) and real x86-64
code with E8 translation on (a slice of this Python's libpython) when one is found.

    .venv/bin/python benchmarks/bench_lzx.py [--mb 8] [--window 21] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from dbgauto_testkit.lzxwriter import ALIGNED, VERBATIM, build_lzx_cab, pdb_like

from dbgauto.symbols.cab import extract_single


def _code(size: int) -> bytes | None:
    lib = Path(sysconfig.get_config_var("LIBDIR") or "/", sysconfig.get_config_var("INSTSONAME") or "-")
    for p in (lib, Path(os.path.realpath(sys.executable))):
        if p.is_file() and p.stat().st_size >= size + 1_000_000:
            with p.open("rb") as f:
                f.seek(1_000_000)
                return f.read(size)
    return None


def bench(label: str, data: bytes, window: int, runs: int, e8: int) -> None:
    t0 = time.perf_counter()
    cab = build_lzx_cab("bench.pdb", data, window, e8_filesize=e8, block_types=(VERBATIM, ALIGNED), block_size=1 << 20)
    enc = time.perf_counter() - t0
    mb = len(data) / 1e6
    print(f"{label}: {mb:.1f} MB -> {len(cab) / 1e6:.2f} MB LZX:{window} cabinet (test encoder {enc:.1f} s)")
    walls, cpus = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        out = extract_single(cab, "bench.pd_").data
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        assert out == data
    dw, dc = statistics.median(walls), statistics.median(cpus)
    print(f"  dbgauto  : median {dw * 1000:.0f} ms wall ({mb / dw:.1f} MB/s), {dc * 1000:.0f} ms CPU", end="")
    print(f" ({mb / dc:.1f} MB/s)")
    exe = shutil.which("cabextract")
    if exe is None:
        print("  cabextract: not installed (apt-get install cabextract); no comparison")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "bench.pd_")
        path.write_bytes(cab)
        ctimes = []
        for _ in range(runs):
            t0 = time.perf_counter()
            p = subprocess.run([exe, "-q", "-p", str(path)], capture_output=True, check=True)
            ctimes.append(time.perf_counter() - t0)
            assert p.stdout == data
    ce = statistics.median(ctimes)
    print(f"  cabextract: median {ce * 1000:.0f} ms wall ({mb / ce:.1f} MB/s); dbgauto / cabextract = {dw / ce:.0f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=8.0)
    ap.add_argument("--window", type=int, default=21, choices=range(15, 22))
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    size = int(a.mb * 1_000_000)
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs" if hasattr(os, "getloadavg") else "")
    bench("PDB-shaped records", pdb_like(size, seed=1), a.window, a.runs, 0)
    code = _code(size)
    if code is None:
        print("machine code: no compiled binary large enough found; skipped")
    else:
        bench("x86-64 code, E8 on", code, a.window, a.runs, 12_000_000)


if __name__ == "__main__":
    main()
