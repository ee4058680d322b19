"""Benchmark the first conversion of a kernel-sized PDB (issue 11), against volatility3's converter in the same run.

A kernel PDB (ntkrnlmp.pdb: 10-15 MB public, ~60 MB private) has thousands of modules, tens of thousands of
functions and structure types with nested members. This script generates such a program (``--units``
translation units, each with its own structures — nested structs, unions, arrays, bitfields, pointers to
other structures — functions that use them, static helpers and globals), compiles the units in parallel with
clang (``x86_64-pc-windows-msvc``, CodeView) and links one DLL + PDB with ``lld-link /debug``. Then, each in a
fresh child process (so peak RSS is the converter's own):

1. dbgauto: ``load_pdb(pdb, cache)`` — PDB → cached table, wall time and peak RSS;
2. volatility3: ``pdbconv.PdbReader(...).get_json()`` — PDB → ISF document, wall time and peak RSS
   (prints "volatility3 not installed" without it; it is never a dbgauto dependency);
3. dbgauto warm: cached table load + 10,000 address resolutions (``function_at``). Target ≤ 50 ms.

    .venv/bin/python benchmarks/bench_pdb_large.py [--units 72] [--structs 700] [--functions 250] [--keep DIR]

A second, small PDB (``--small-units``) is measured the same way: volatility3 needs about 0.6 GB of memory
per MB of PDB here, so on the kernel-sized one it meets its address-space cap (``--vol-mem-gb``, default 6)
and the small one gives the comparison. Times are wall and CPU (the CPU time is the fair figure on a shared
machine); peak RSS comes from ``resource`` (POSIX; elsewhere "n/a").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TARGET = "x86_64-pc-windows-msvc"
CFLAGS = ("-O1", "-mno-stack-arg-probe", "-g", "-gcodeview")


def unit_source(u: int, structs: int, functions: int) -> str:
    """One translation unit: ``structs`` unique structures (nested, unions, arrays, bitfields) and
    ``functions`` exported functions walking them, plus static helpers and globals."""
    out = [f"struct _LIST_{u} {{ struct _LIST_{u} *Flink, *Blink; }};"]
    if u == 0:  # structure copies call memcpy; a kernel brings its own (the code is never run)
        out.append("void *memcpy(void *d, const void *s, unsigned long long n) "
                   "{ volatile char *a = d; const char *b = s; while (n--) *a++ = *b++; return d; }")  # fmt: skip
    # named at file scope: clang gives a type defined inside a struct an LF_NESTTYPE member, which
    # volatility3's converter rejects ("Unhandled leaf_type: 5392"); kernel PDBs (C, MSVC) have none
    for v in range(8):
        out.append(f"struct _U{u}_B{v} {{ unsigned long Low : {4 + v}; unsigned long High : {20 - v}; }};")
        out.append(f"union _U{u}_V{v} {{ unsigned long long Value; struct _U{u}_B{v} Bits; void *Ptr[{1 + v}]; }};")
    for s in range(structs):
        name = f"_U{u}_S{s}"
        inner = f"_U{u}_S{s - 1}" if s else f"_LIST_{u}"
        members = [
            f"struct _LIST_{u} Links;",
            f"struct {inner} Embedded;" if s % 3 == 0 else f"struct {inner} *Prev;",
            f"union _U{u}_V{s % 8} U;",
            f"unsigned char Name[{8 + s % 24}];",
            f"struct {name} *Self;",
        ]
        members += [f"unsigned long F{k}; void *P{k};" for k in range(6 + s % 18)]
        out.append(f"struct {name} {{ {' '.join(members)} }};")
        out.append(f"struct {name} g_U{u}_S{s};")
    for f in range(functions):
        s = f % max(structs, 1)
        t = f"_U{u}_S{s}"
        out.append(
            f"static __declspec(noinline) int h_{u}_{f}(struct {t} *a, int k) "
            f"{{ volatile int acc = k; for (int i = 0; i < (int)sizeof(a->Name); i++) acc += a->Name[i]; "
            f"return acc + (int)a->U.Bits.Low; }}"
        )
        out.append(
            f"__declspec(dllexport) int Ki{u}Func{f}(struct {t} *a, struct _LIST_{u} *l) {{ "
            f"int n = 0; while (l && n < 64) {{ l = l->Flink; n++; }} "
            f"struct {t} local = *a; local.F0 += n; return h_{u}_{f}(&local, n) + (int)local.F0; }}"
        )
    return "\n".join(out)


def build(d: Path, units: int, structs: int, functions: int) -> Path:
    def compile_one(u: int) -> str:
        (d / f"u{u}.c").write_text(unit_source(u, structs, functions))
        subprocess.run(
            ["clang", f"--target={TARGET}", *CFLAGS, "-c", f"u{u}.c", "-o", f"u{u}.obj"],
            cwd=d,
            check=True,
            capture_output=True,
        )
        return f"u{u}.obj"

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objs = list(pool.map(compile_one, range(units)))
    subprocess.run(
        ["lld-link", "/dll", "/noentry", "/nodefaultlib", "/debug", "/out:big.dll", "/pdb:big.pdb", *objs],
        cwd=d,
        check=True,
        capture_output=True,
    )
    return d / "big.pdb"


# ---- children (one per measurement, so each peak RSS is its own) ----------------------------------------------


def _peak_mb() -> float | None:
    try:
        import resource
    except ImportError:
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def child_dbgauto(pdb: Path, cache: Path) -> dict:
    from dbgauto.symbols.pdb import load_pdb

    base = _peak_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    table = load_pdb(pdb, cache)
    ms, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
    return {"ms": ms, "cpu_ms": cpu, "peak_mb": _peak_mb(), "base_mb": base, "symbols": len(table),
            "types": len(table.type_names())}  # fmt: skip


def child_vol(pdb: Path) -> dict:
    try:
        from volatility3.framework import contexts
        from volatility3.framework.symbols.windows import pdbconv
    except ImportError:
        return {"missing": True}
    base = _peak_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    reader = pdbconv.PdbReader(contexts.Context(), pdb.resolve().as_uri())
    doc = reader.get_json()
    ms, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
    return {"ms": ms, "cpu_ms": cpu, "peak_mb": _peak_mb(), "base_mb": base, "symbols": len(doc["symbols"]),
            "types": len(doc["user_types"])}  # fmt: skip


def child_warm(pdb: Path, cache: Path, runs: int = 7) -> dict:
    from dbgauto.symbols.pdb import load_pdb

    first = load_pdb(pdb, cache)  # the cache entry exists: this is already a cached load
    funcs = [r for _n, r in first.names("Ki*")]
    lo, hi = min(funcs), max(funcs) + 0x100
    rng = random.Random(11)
    addrs = [rng.randrange(lo, hi) for _ in range(10_000)]
    loads, resolves, cpu_loads, cpu_resolves = [], [], [], []
    named = 0
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        table = load_pdb(pdb, cache)
        t1, c1 = time.perf_counter(), time.process_time()
        named = sum(table.function_at(a) is not None for a in addrs)
        t2, c2 = time.perf_counter(), time.process_time()
        loads.append((t1 - t0) * 1000)
        resolves.append((t2 - t1) * 1000)
        cpu_loads.append((c1 - c0) * 1000)
        cpu_resolves.append((c2 - c1) * 1000)
    total = [a + b for a, b in zip(loads, resolves, strict=True)]
    cpu_total = [a + b for a, b in zip(cpu_loads, cpu_resolves, strict=True)]
    entry = next((cache / "tables").iterdir())
    return {"load_ms": statistics.median(loads), "resolve_ms": statistics.median(resolves),
            "total_ms": statistics.median(total), "cpu_load_ms": statistics.median(cpu_loads),
            "cpu_resolve_ms": statistics.median(cpu_resolves), "cpu_total_ms": statistics.median(cpu_total),
            "named": named, "table_mb": entry.stat().st_size / 1e6, "types": len(table.type_names())}  # fmt: skip


def _child(kind: str, *args: str, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, *args]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if p.returncode:
        last = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
        return {"error": f"{last} after {time.perf_counter() - t0:.0f} s"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _rss(r: dict) -> str:
    if r.get("peak_mb") is None:
        return "peak RSS n/a"
    return f"peak RSS {r['peak_mb']:.0f} MB (interpreter + imports {r['base_mb']:.0f} MB)"


def _times(r: dict) -> str:
    return f"{r['ms'] / 1000:.2f} s wall, {r['cpu_ms'] / 1000:.2f} s CPU"


def _limit_memory(gb: float) -> None:
    """Cap this (child) process's address space, so a converter that grows without bound fails alone."""
    try:
        import resource
    except ImportError:
        return
    cap = int(gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def measure(pdb: Path, label: str, args: argparse.Namespace) -> bool:
    """Both converters on one PDB, each in a fresh child; then dbgauto's warm path. False when dbgauto failed."""
    size = pdb.stat().st_size
    print(f"--- {label}: {pdb.name}, {size / 1e6:.1f} MB")
    cache = pdb.parent / f"cache-{pdb.stem}"
    shutil.rmtree(cache, ignore_errors=True)
    r = _child("dbgauto", str(pdb), str(cache), timeout=1800)
    if "error" in r:
        print(f"dbgauto first conversion: FAILED {r['error']}")
        return False
    print(f"dbgauto first conversion (PDB → cached table): {_times(r)}, {_rss(r)}; "
          f"{r['symbols']} symbols, {r['types']} types")  # fmt: skip
    w = _child("warm", str(pdb), str(cache), timeout=600)
    print(f"dbgauto cached load ({w['table_mb']:.1f} MB table file, {w['types']} types) + 10,000 resolutions, "
          f"median of 7: wall {w['load_ms']:.1f} + {w['resolve_ms']:.1f} = {w['total_ms']:.1f} ms, CPU "
          f"{w['cpu_load_ms']:.1f} + {w['cpu_resolve_ms']:.1f} = {w['cpu_total_ms']:.1f} ms ({w['named']} named; "
          f"target ≤ 50 ms for a kernel's table)")  # fmt: skip
    if args.no_vol:
        return True
    v = _child("vol", str(pdb), str(args.vol_mem_gb), timeout=args.vol_timeout)
    if v.get("missing"):
        print("volatility3 not installed (pip install volatility3 to compare)")
    elif "error" in v:
        print(f"volatility3 pdbconv: FAILED ({v['error']}; address space capped at {args.vol_mem_gb:g} GB)")
    else:
        ratio = v["cpu_ms"] / r["cpu_ms"]
        print(f"volatility3 pdbconv (PDB → ISF JSON in memory): {_times(v)}, {_rss(v)}; "
              f"{v['symbols']} symbols, {v['types']} types; {ratio:.0f}× dbgauto's CPU time")  # fmt: skip
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=72)
    ap.add_argument("--structs", type=int, default=700, help="structures per unit")
    ap.add_argument("--functions", type=int, default=250, help="exported functions per unit (+ as many helpers)")
    ap.add_argument("--small-units", type=int, default=2, help="units of the second, small PDB (0: none)")
    ap.add_argument("--keep", type=Path, help="build into (and keep, and reuse) this directory")
    ap.add_argument("--no-vol", action="store_true")
    ap.add_argument("--vol-timeout", type=float, default=1800)
    ap.add_argument("--vol-mem-gb", type=float, default=6, help="address-space cap of volatility3's child")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "vol":
            _limit_memory(float(rest.pop()))
        fn = {"dbgauto": child_dbgauto, "vol": child_vol, "warm": child_warm}[kind]
        print(json.dumps(fn(*map(Path, rest))))
        return 0
    if shutil.which("clang") is None or shutil.which("lld-link") is None:
        print("needs clang and lld-link (apt-get install clang lld)", file=sys.stderr)
        return 2
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} at start" if load else "machine: n/a")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        plans = [("kernel-sized", root / "big", args.units)]
        if args.small_units:
            plans.append(("small (for a converter that cannot take the large one)", root / "small", args.small_units))
        for label, d, units in plans:
            d.mkdir(parents=True, exist_ok=True)
            pdb = d / "big.pdb"
            if not (args.keep and pdb.is_file()):
                t0 = time.perf_counter()
                build(d, units, args.structs, args.functions)
                print(f"built {label}: {pdb.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s "
                      f"({units} units × {args.structs} structs, {args.functions} exported functions)")  # fmt: skip
            if not measure(pdb, label, args):
                return 1
    end = os.getloadavg() if hasattr(os, "getloadavg") else None
    if end:
        print(f"load average {end[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
