"""Benchmark the symbol layer (issue 11 targets).

1. Load the cached kernel table (10.0.19041.804 from ../shared/symbols, converted once beforehand) and
   resolve 10,000 random kernel code addresses with ``function_at``. Target: ≤ 50 ms together.
2. Symbolise the real small dump's stack values (triage_x64.dmp) with the warm table. Target: ≤ 5 ms.
3. First conversion of a large PDB that clang + lld-link build here from generated C (``--functions``,
   ``--structs`` set its size), timed for dbgauto's reader and, in the same run, volatility3's converter
   (``pdbconv.PdbReader.get_json``) when it is installed.

    .venv/bin/python benchmarks/bench_symbols.py [--functions 20000] [--structs 3000] [--no-pdb] [--no-vol]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.smalldump import kernel_view, parts_from_triage
from dbgauto.symbols.isf import load_isf
from dbgauto.symbols.naming import code_name
from dbgauto.symbols.pdb import load_pdb
from dbgauto.symbols.table import SymbolTable

SHARED = Path(os.environ.get("DBGAUTO_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
ISF = SHARED / "symbols" / "ntkrnlmp.pdb" / "5278AFF86C341677D7D7835C85B7B844-1.json.xz"
DUMP = SHARED / "dumps" / "triage_x64.dmp"


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def bench_table(cache: Path, runs: int = 7) -> None:
    t0 = time.perf_counter()
    load_isf(ISF, cache)
    print(f"ISF first conversion (xz + JSON → table file): {_ms(t0):.0f} ms")
    top = max(r for _, r in load_isf(ISF, cache).names("Ki*"))
    rng = random.Random(11)
    addrs = [rng.randrange(0x1000, top) for _ in range(10_000)]
    loads, resolves = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        table = load_isf(ISF, cache)
        loads.append(_ms(t0))
        t0 = time.perf_counter()
        named = sum(table.function_at(a) is not None for a in addrs)
        resolves.append(_ms(t0))
    total = [a + b for a, b in zip(loads, resolves, strict=True)]
    print(
        f"cached table load: median {statistics.median(loads):.1f} ms; 10,000 lookups: "
        f"median {statistics.median(resolves):.1f} ms ({named} named); together {statistics.median(total):.1f} ms "
        f"(target ≤ 50 ms)"
    )


def bench_stack(cache: Path) -> None:
    tri = KernelDump.open(DUMP).triage
    table = load_isf(ISF, cache)
    kb = tri.kdbg.kern_base
    values = [h.value for h in kernel_view(parts_from_triage(tri))["stack_scan"] if h.module == "ntoskrnl.exe"]
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        names = [code_name(v, kb, table, "nt") for v in values]
        times.append(_ms(t0))
    print(
        f"small-dump stack ({len(values)} nt values, e.g. {names[2]}): median {statistics.median(times):.2f} ms "
        f"(target ≤ 5 ms)"
    )


def _big_source(functions: int, structs: int) -> str:
    parts = []
    for s in range(structs):
        members = " ".join(f"int f{m}; void *p{m};" for m in range(8 + s % 40))
        parts.append(f"struct S{s} {{ {members} struct S{s} *self; }};")
    for f in range(functions):
        s = f % max(structs, 1)
        parts.append(f"__declspec(dllexport) int fn{f}(struct S{s} *a) {{ return a->f0 + {f} + (a->self != 0); }}")
    return "\n".join(parts)


def bench_pdb(functions: int, structs: int, with_vol: bool) -> None:
    if shutil.which("clang") is None or shutil.which("lld-link") is None:
        print("PDB conversion: skipped (clang/lld-link missing)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "big.c").write_text(_big_source(functions, structs))
        t0 = time.perf_counter()
        subprocess.run(
            ["clang", "--target=x86_64-pc-windows-msvc", "-c", "-g", "-gcodeview", "-O0", "big.c", "-o", "big.obj"],
            cwd=d,
            check=True,
        )
        subprocess.run(
            ["lld-link", "/dll", "/noentry", "/nodefaultlib", "/debug", "/out:big.dll", "/pdb:big.pdb", "big.obj"],
            cwd=d,
            check=True,
            capture_output=True,
        )
        size = (d / "big.pdb").stat().st_size
        print(
            f"built big.pdb: {size / 1e6:.1f} MB in {_ms(t0) / 1000:.1f} s ({functions} functions, {structs} structs)"
        )
        t0 = time.perf_counter()
        table = load_pdb(d / "big.pdb", d / "cache")
        first = _ms(t0)
        t0 = time.perf_counter()
        SymbolTable.load(next((d / "cache" / "tables").iterdir()))
        print(
            f"dbgauto PDB conversion: {first:.0f} ms ({len(table)} symbols, {len(table.type_names())} types); "
            f"cached reload {_ms(t0):.1f} ms"
        )
        if not with_vol:
            return
        try:
            from volatility3.framework import contexts
            from volatility3.framework.symbols.windows import pdbconv
        except ImportError:
            print("volatility3 converter: not installed")
            return
        t0 = time.perf_counter()
        reader = pdbconv.PdbReader(contexts.Context(), (d / "big.pdb").resolve().as_uri())
        doc = reader.get_json()
        print(f"volatility3 pdbconv: {_ms(t0):.0f} ms ({len(doc['symbols'])} symbols, {len(doc['user_types'])} types)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", type=int, default=20_000)
    ap.add_argument("--structs", type=int, default=3_000)
    ap.add_argument("--no-pdb", action="store_true")
    ap.add_argument("--no-vol", action="store_true")
    args = ap.parse_args()
    if not ISF.is_file() or not DUMP.is_file():
        print(f"needs {ISF} and {DUMP}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as cache:
        bench_table(Path(cache))
        bench_stack(Path(cache))
    if not args.no_pdb:
        bench_pdb(args.functions, args.structs, not args.no_vol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
