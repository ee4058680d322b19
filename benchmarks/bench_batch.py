"""Benchmark the batch: large sparse dumps and many small dumps, --jobs 1 vs --jobs 2, and the catalog's cost.

    python benchmarks/bench_batch.py [--large 20] [--small 1000] [--ram-gib 16] [--work DIR] [--keep]

- large: N Kernel bitmap dumps (DumpType 6, encoded KDBG) of a machine with RAM-GIB GiB, rebuilt by
  dbgauto_testkit.dumpinflate from the real small dump (../shared), sparse (5 % of RAM marked present as holes);
  each is converted to a small dump and reported on (html, json).
- small: N hard links of the real small dump (already small: facts and reports only, no conversion).
- each set runs with --jobs 1 and --jobs 2 into a fresh output folder (wall time, speed-up), then once more
  with nothing new (the per-dump cost of deciding "unchanged");
- catalog: the per-dump cost of recording one result (one transaction with a realistic facts JSON),
  measured in-process on a real SQLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DBGAUTO_SHARED", REPO.parent / "shared"))


def make_large(folder: Path, count: int, ram_gib: int, triage: Path) -> list[Path]:
    from dbgauto_testkit import dumpinflate

    small = dumpinflate.parse(triage)
    paths = []
    for i in range(count):
        target = folder / f"host{i:02d}" / "MEMORY.DMP"
        target.parent.mkdir(parents=True, exist_ok=True)
        dumpinflate.inflate(
            triage,
            target,
            dump_type=6,
            encoded=True,
            placement="scattered",
            ram_bytes=ram_gib << 30,
            present_fraction=0.05,
            seed=i,
            small=small,
        )
        paths.append(target)
    return paths


def make_small(folder: Path, count: int, triage: Path) -> list[Path]:
    paths = []
    for i in range(count):
        target = folder / f"pc{i // 100:02d}" / f"Mini{i:04d}.dmp"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(triage, target)
        except OSError:
            shutil.copyfile(triage, target)
        paths.append(target)
    return paths


def run_batch(src: Path, out: Path, jobs: int, *extra: str) -> tuple[float, dict[str, object]]:
    cmd = [
        sys.executable,
        "-m",
        "dbgauto",
        "-q",
        "batch",
        str(src),
        "--out",
        str(out),
        "--jobs",
        str(jobs),
        "--formats",
        "html,json",
        "--json",
        *extra,
    ]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if res.returncode not in (0, 1):
        raise SystemExit(f"batch failed ({res.returncode}): {res.stderr[-2000:]}")
    return elapsed, json.loads(res.stdout)


def catalog_cost(work: Path, n: int, facts: dict[str, object]) -> tuple[float, float]:
    """Seconds per add_result and per unchanged-decision lookup, on a real catalog file."""
    from dbgauto.catalog.db import Catalog
    from dbgauto.catalog.records import HeaderFacts, ResultRecord, SourceState

    path = work / "catalog-bench.sqlite"
    with Catalog.open(path) as cat:
        run = cat.start_run({})
        t0 = time.perf_counter()
        for i in range(n):
            rec = ResultRecord(
                source=SourceState(f"/fleet/pc{i}/MEMORY.DMP", 1 << 34, i, f"sha256-1m:{i:064x}"),
                status="ok",
                header=HeaderFacts(True, 6, 0x8664, 19041, 0x1000007E, (1, 2, 3, 4)),
                facts=facts,
                report_paths={"html": str(work / f"r{i}.html")},
                small_path=str(work / f"s{i}"),
            )
            cat.add_result(run, rec)
        per_write = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        states = cat.all_dump_states()
        per_lookup = (time.perf_counter() - t0) / max(1, len(states))
    return per_write, per_lookup


def index_seconds(out: Path) -> float:
    """Time between the last recorded result and the end of the run: writing index.html and index.csv."""
    import sqlite3
    from datetime import datetime

    conn = sqlite3.connect(out / "dbgauto.sqlite")
    last, ended = conn.execute("SELECT (SELECT max(finished) FROM results), max(ended) FROM runs").fetchone()
    conn.close()
    return (datetime.fromisoformat(ended) - datetime.fromisoformat(last)).total_seconds()


def bench_set(name: str, src: Path, work: Path, count: int, repeat: int) -> dict[int, float]:
    """Fresh-output runs with --jobs 1 and 2, alternated ``repeat`` times (the best of each is kept)."""
    times: dict[int, float] = {}
    for _ in range(repeat):
        for jobs in (1, 2):
            out = work / f"out-{name}-j{jobs}"
            shutil.rmtree(out, ignore_errors=True)
            elapsed, summary = run_batch(src, out, jobs)
            times[jobs] = min(times.get(jobs, elapsed), elapsed)
            print(
                f"{name}: {count} dumps, --jobs {jobs}: {elapsed:7.2f} s  ({elapsed / count * 1000:7.1f} ms/dump;"
                f" ok {summary['succeeded']}, failed {len(summary['failed'])})",
                flush=True,
            )  # type: ignore[arg-type]
    tail = index_seconds(work / f"out-{name}-j2")
    print(f"{name}: of which the index over all {count} dumps (coordinator, after the last task): {tail:.2f} s")
    again, _ = run_batch(src, work / f"out-{name}-j2", 2)
    print(f"{name}: best --jobs 1 {times[1]:.2f} s, --jobs 2 {times[2]:.2f} s: speed-up {times[1] / times[2]:.2f}x")
    print(
        f"{name}: rerun with nothing new: {again:.2f} s ({again / count * 1000:.2f} ms/dump, incl. interpreter start)"
    )
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--large", type=int, default=20)
    p.add_argument("--small", type=int, default=1000)
    p.add_argument("--ram-gib", type=int, default=16)
    p.add_argument("--work", type=Path)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--repeat", type=int, default=2, help="alternate --jobs 1/2 runs this many times, keep the best")
    args = p.parse_args(argv)
    triage = SHARED / "dumps" / "triage_x64.dmp"
    if not triage.is_file():
        print(f"{triage} is needed (the real small dump); set DBGAUTO_SHARED", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="dbgauto-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work}  (cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}: shared machine)")
    try:
        if args.large:
            t0 = time.perf_counter()
            large = make_large(work / "large", args.large, args.ram_gib, triage)
            apparent = sum(p.stat().st_size for p in large)
            on_disk = sum(p.stat().st_blocks * 512 for p in large)
            print(
                f"generated {args.large} inflated {args.ram_gib} GiB-RAM dumps in {time.perf_counter() - t0:.1f} s:"
                f" {apparent / 2**30:.1f} GiB apparent, {on_disk / 2**20:.0f} MiB on disk"
            )
            bench_set("large", work / "large", work, args.large, args.repeat)
        if args.small:
            make_small(work / "small", args.small, triage)
            bench_set("small", work / "small", work, args.small, args.repeat)
        from dbgauto.engines.jobs import facts_from_dump

        facts = facts_from_dump(triage).to_dict()
        per_write, per_lookup = catalog_cost(work, 1000, facts)
        size = len(json.dumps(facts))
        print(
            f"catalog: {per_write * 1000:.2f} ms per recorded result (one transaction, {size:,}-byte facts JSON);"
            f" {per_lookup * 1e6:.1f} us per known-dump lookup"
        )
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
