"""Benchmark the symbol layer inside the product: one dump's SymbolContext and its facts.

Over the real small dump (triage_x64.dmp) and the six ISF tables of ../shared/symbols, in a fresh cache:
1. the first SymbolContext (every candidate converted once, fingerprints written);
2. a later one in a new process state (the per-process memo cleared: fingerprints + one table from disk);
3. a later one in the same process (memo warm: what a batch worker pays per further dump);
4. facts_from_parts with and without symbols (what symbolising the stack and identity adds).

    .venv/bin/python benchmarks/bench_symint.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from dbgauto.analysis.from_dump import facts_from_parts
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.open import read_parts
from dbgauto.symbols import context
from dbgauto.symbols.context import KernelInputs, SymbolContext
from dbgauto.symbols.sympath import resolve_symbol_path

SHARED = Path(os.environ.get("DBGAUTO_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def ms(f, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    dump = KernelDump.open(SHARED / "dumps" / "triage_x64.dmp")
    parts = read_parts(dump)
    inputs = KernelInputs.from_parts(parts)
    with tempfile.TemporaryDirectory() as cache:
        resolved = resolve_symbol_path(str(SHARED / "symbols"), {"DBGAUTO_SYMBOL_CACHE": cache})
        t = time.perf_counter()
        ctx = SymbolContext.build(inputs, resolved)
        print(f"first context (6 ISF tables converted): {(time.perf_counter() - t) * 1e3:.0f} ms -> {ctx.describe()}")

        def cold() -> None:
            context._memo.clear()
            SymbolContext.build(inputs, resolved)

        print(f"context, cache on disk, memo cleared: {ms(cold, a.repeat):.1f} ms (median of {a.repeat})")
        SymbolContext.build(inputs, resolved)
        warm = ms(lambda: SymbolContext.build(inputs, resolved), a.repeat)
        print(f"context, memo warm (a batch worker's next dump): {warm:.2f} ms")
        plain = ms(lambda: facts_from_parts(dump, parts, source=None), a.repeat)
        named = ms(lambda: facts_from_parts(dump, parts, source=None, symbols=ctx), a.repeat)
        print(f"facts_from_parts: {plain:.1f} ms without symbols, {named:.1f} ms with (adds {named - plain:.1f} ms)")


if __name__ == "__main__":
    main()
