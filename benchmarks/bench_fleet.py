"""Benchmark the fleet catalog, the coordinator and the index at scale (issue 13), side by side with main.

    python benchmarks/bench_fleet.py [--rows 100000] [--new 200] [--nightly] [--work DIR]
                                     [--baseline DIR] [--browser chromium] [--cold] [--index-only]

``--baseline DIR``: a checkout of main (``git archive main | tar -x -C DIR``); every step below then also
runs with main's code (``PYTHONPATH=DIR``) in the same run, on a copy of the same catalog.

- populate (child process; main's code when ``--baseline``, so the catalog is main's schema and this
  code's copy is migrated in place when it is opened): N results built from the real small dump's facts
  (../shared), varied (5,000 hosts, crash days over 60 days, 24 bug checks x 60 culprits, 8 driver-list
  variants), recorded in chunks of 64 (one transaction each, as the batch does); the first 2,000 also one
  transaction per result, for comparison. Catalog bytes per dump after a WAL checkpoint (target <= 8 KB).
  ``--nightly``: each catalogued dump is also a real file (4 KiB, ``PAGEDU64`` + zeros) with the size and
  mtime the catalog recorded, so the batch below walks all N files and finds them unchanged, as a nightly
  run over a fleet share does.
- batch (child process, on a fresh copy of the catalog each): ``run_batch`` with ``--new`` new real small
  dumps (copies of the real small dump) as its source ("new only"); with ``--nightly`` also over the new
  dumps plus the N unchanged files ("nightly"); ``--jobs 1``, html+json reports, the index rebuilt. Peak RSS
  of the coordinator process (target: <= 150 MB at 100k), wall time.
- index (child process): index.html + index.csv + what changed, from the catalog (target <= 100 MB), as
  the batch does it after a run (``Catalog.prefetch``, what changed, the index). ``--cold``: first with the
  catalog's pages dropped from the OS cache (``posix_fadvise(POSIX_FADV_DONTNEED)`` on the catalog and its
  WAL after an fsync: POSIX only, no root, nothing else evicted), then again warm; each prints the bytes the
  child read from storage (``read_bytes`` of ``/proc/self/io``) and the read requests the disk completed
  meanwhile (``/proc/diskstats``, every process's). ``--index-only``: only this step, on a copy of
  ``WORK/populated.sqlite`` from an earlier run (``--work``).
- page: index.html size; headless Chromium: the time the page script is done rendering its first page
  (performance.now() at its end, plus first-contentful-paint), a filter and a sort (targets <= 2 s and
  <= 300 ms). The measured copy carries one extra script allowed by its own hash.

Peak RSS is the process's own high-water mark: VmHWM on Linux, peak working set (psutil) on Windows,
ru_maxrss elsewhere, read by the measured process itself at its end.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DBGAUTO_SHARED", REPO.parent / "shared"))
BUGCHECKS = [(0x0A + i, f"BUGCHECK_NAME_{i:02d}") for i in range(24)]


def varied(base: dict[str, Any], i: int) -> dict[str, Any]:
    f = copy.copy(base)
    code, name = BUGCHECKS[i % len(BUGCHECKS)]
    f["bugcheck"] = dict(base["bugcheck"], code=hex(code), name=name)
    f["culprit"] = dict(base["culprit"], name=f"vendor{(i * 7) % 60:02d}.sys", timestamp=hex(0x60000000 + i % 3))
    f["bucket_id"] = None  # the bucket from the varied bug check and culprit (24 x 60 = 1,440 buckets)
    day = 1 + (i * 13) % 60
    f["crash_time"] = f"2026-{9 + day // 31:02d}-{1 + day % 30:02d}T{i % 24:02d}:00:00Z"
    drivers = [dict(d) for d in base["drivers"]]
    drivers[-1]["timestamp"] = hex(0x5F000000 + i % 8)
    f["drivers"] = drivers
    f["source"] = dict(base["source"], path=f"/fleet/PC{i % 5000:04d}/Minidump/{i:06d}.dmp")
    return f


def records(base: dict[str, Any], start: int, n: int, files: Path | None = None) -> list[Any]:
    from dbgauto.catalog.records import HeaderFacts, ResultRecord, SourceState

    out = []
    for i in range(start, start + n):
        if files is None:
            path, size, mtime_ns = f"/fleet/PC{i % 5000:04d}/Minidump/{i:06d}.dmp", 1444532, i
        else:
            p = fleet_file(files, i)
            st = p.stat()
            path, size, mtime_ns = str(p), st.st_size, st.st_mtime_ns
        failed = i % 50 == 0
        out.append(
            ResultRecord(
                SourceState(path, size, mtime_ns, f"sha256-1m:{i:064x}"),
                "failed" if failed else "ok",
                error_code="truncated" if failed else None,
                error_message=f"{path}: truncated" if failed else None,
                header=HeaderFacts(True, 4, 0x8664, 19041, 0x7E, (1, 2, 3, 4), "2026-10-01T00:00:00"),
                facts=None if failed else varied(base, i),
                report_paths={} if failed else {"html": f"reports/{i:06d}.html", "json": f"reports/{i:06d}.json"},
                host=f"PC{i % 5000:04d}",
            )
        )
    return out


def fleet_file(root: Path, i: int) -> Path:
    return root / f"PC{i % 5000:04d}" / "Minidump" / f"{i:06d}.dmp"


def make_fleet_files(root: Path, n: int) -> None:
    """N small files with a kernel dump signature: what discovery walks and reads 8 bytes of."""
    data = b"PAGEDU64" + bytes(4088)
    for i in range(n):
        p = fleet_file(root, i)
        if i < 5000:
            p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def record(path: Path, base: dict[str, Any], n: int, chunk: int, files: Path | None) -> tuple[float, float]:
    """(coordinator seconds recording, worker seconds packing): records arrive packed, as from workers."""
    from dbgauto.catalog.db import Catalog
    from dbgauto.catalog.summary import pack_facts, summary_of

    packing = recording = 0.0
    with Catalog.open(path) as cat:
        run = cat.start_run({})
        for start in range(0, n, 2000):
            recs = records(base, start, min(2000, n - start), files)
            t0 = time.perf_counter()
            for r in recs:
                if r.facts is not None:
                    r.summary, r.packed, r.facts = summary_of(r.facts), pack_facts(r.facts), None
            t1 = time.perf_counter()
            for j in range(0, len(recs), chunk):
                cat.add_results(run, recs[j : j + chunk])
            packing += t1 - t0
            recording += time.perf_counter() - t1
        t1 = time.perf_counter()
        cat.refresh_buckets()  # once per run
        recording += time.perf_counter() - t1
        cat.finish_run(run)
        cat.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return recording, packing


def peak_kib() -> int:
    """This process's peak resident memory in KiB (module doc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            return int(next(x for x in fh if x.startswith("VmHWM")).split()[1])
    except (OSError, StopIteration):
        pass
    try:
        import psutil

        info = psutil.Process().memory_info()
        if hasattr(info, "peak_wset"):
            return int(info.peak_wset) // 1024
    except ImportError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# ---------------------------------------------------------------- child processes (which dbgauto: PYTHONPATH)
def child_populate(catalog: Path, n: int, files: Path | None) -> dict[str, Any]:
    from dbgauto.engines.jobs import facts_from_dump

    base = facts_from_dump(SHARED / "dumps" / "triage_x64.dmp").to_dict()
    one = catalog.with_name("per_result.sqlite")
    m = min(2000, n)
    s1, _ = record(one, base, m, 1, None)
    s64, pack = record(catalog, base, n, 64, files)
    return {"one_ms": s1 / m * 1e3, "m": m, "chunk_ms": s64 / n * 1e3, "pack_ms": pack / n * 1e3}


def child_batch(out: Path, sources: list[str]) -> dict[str, Any]:
    from dbgauto.batch.coordinator import BatchOptions, run_batch

    t0 = time.perf_counter()
    s = run_batch(BatchOptions(sources=sources, out_dir=str(out), jobs=1, formats=("html", "json")))
    return {
        "seconds": time.perf_counter() - t0,
        "peak_kib": peak_kib(),
        "found": s.found,
        "unchanged": s.skipped,
        "processed": s.processed,
        "failed": len(s.failures),
    }


def child_index(catalog: Path, out: Path) -> dict[str, Any]:
    from dbgauto.batch.coordinator import write_index
    from dbgauto.catalog.changes import changes_since
    from dbgauto.catalog.db import Catalog

    io0, t0 = own_read_bytes(), time.perf_counter()
    with Catalog.open(catalog) as cat:
        if hasattr(cat, "prefetch"):  # as the batch does before its fleet queries (main's code has none)
            cat.prefetch()
        write_index(cat, out, (), changes_since(cat.conn, "2026-01-01"))
    read = own_read_bytes() - io0 if io0 >= 0 else -1
    return {"seconds": time.perf_counter() - t0, "peak_kib": peak_kib(), "read_bytes": read}


def own_read_bytes() -> int:
    """Bytes this process has had read from storage (Linux ``/proc/self/io``), else -1."""
    try:
        with open("/proc/self/io", encoding="ascii") as fh:
            return int(next(x for x in fh if x.startswith("read_bytes")).split()[1])
    except (OSError, StopIteration, ValueError):
        return -1


def disk_reads() -> int:
    """Read requests completed by all block devices so far (``/proc/diskstats``, whole disks only), else -1."""
    try:
        with open("/proc/diskstats", encoding="ascii") as fh:
            rows = [x.split() for x in fh]
    except OSError:
        return -1
    names = {r[2] for r in rows}
    # partitions (vda1, nvme0n1p1) count again in their disk's line: keep names no other name is a prefix of
    return sum(int(r[3]) for r in rows if not any(n != r[2] and r[2].startswith(n) for n in names))


def evict(catalog: Path) -> bool:
    """Drop the catalog's (and its WAL's) pages from the OS cache; False where POSIX_FADV_DONTNEED is missing."""
    if not hasattr(os, "posix_fadvise"):
        return False
    for suffix in ("", "-wal", "-shm"):
        p = Path(f"{catalog}{suffix}")
        if p.exists():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)  # only clean pages can be dropped
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return True


def index_step(code: Path | None, label: str, out: Path, cold: bool) -> None:
    catalog = out / "dbgauto.sqlite"
    for kind in ("cold", "warm") if cold else ("",):
        if kind == "cold" and not evict(catalog):
            print("index: --cold needs os.posix_fadvise (POSIX); measured warm only")
            continue
        d0 = disk_reads()
        x = run_child(code, "index", str(catalog), str(out))
        reads = disk_reads() - d0 if d0 >= 0 else -1
        html = out / "index.html"
        print(
            f"index [{label}{', ' + kind if kind else ''}]: {x['seconds']:.2f} s, peak RSS"
            f" {x['peak_kib'] / 1024:.0f} MB (target <= 100); read from storage"
            f" {x.get('read_bytes', -1) / 1e6:.1f} MB, disk read requests {reads} (all processes);"
            f" index.html {html.stat().st_size / 1e6:.1f} MB,"
            f" index.csv {(out / 'index.csv').stat().st_size / 1e6:.1f} MB"
        )


def run_child(baseline: Path | None, *args: str) -> dict[str, Any]:
    env = dict(os.environ)
    if baseline is not None:
        env["PYTHONPATH"] = str(baseline)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the baseline checkout as it is
    res = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"child {args[0]} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


MEASURE = """(function () {
  var ready = performance.now();
  var f = document.getElementById("filter"), t = document.getElementById("dumps");
  var t0 = performance.now(); f.value = "vendor07"; f.dispatchEvent(new Event("input"));
  var filt = performance.now() - t0, shown = document.getElementById("shown").textContent;
  t0 = performance.now(); f.value = "vendor07 pc00"; f.dispatchEvent(new Event("input"));
  var filt2 = performance.now() - t0, shown2 = document.getElementById("shown").textContent;
  f.value = ""; f.dispatchEvent(new Event("input"));
  t0 = performance.now(); t.tHead.rows[0].cells[3].click(); var sort = performance.now() - t0;
  t0 = performance.now(); t.tHead.rows[0].cells[3].click(); var sortBack = performance.now() - t0;
  var latest = t.tBodies[0].rows[0].cells[3].textContent;
  t0 = performance.now(); t.tHead.rows[0].cells[0].click(); var sortName = performance.now() - t0;
  var firstName = t.tBodies[0].rows[0].cells[0].textContent;
  var s = document.getElementById("status"), fail = null, failShown = null;
  if (s) {
    t0 = performance.now(); s.value = "failed"; s.dispatchEvent(new Event("change"));
    fail = performance.now() - t0; failShown = document.getElementById("shown").textContent;
  }
  var out = document.createElement("pre"); out.id = "bench";
  out.textContent = JSON.stringify({ready_ms: ready, filter_ms: filt, filter_shown: shown, filter2_ms: filt2,
    filter2_shown: shown2, sort_time_ms: sort, sort_time_again_ms: sortBack, latest_first: latest,
    sort_name_ms: sortName, first_name: firstName, status_failed_ms: fail,
    status_failed_shown: failShown});
  document.body.appendChild(out);
  new PerformanceObserver(function (list) {
    list.getEntries().forEach(function (p) {
      if (p.name === "first-contentful-paint") { out.setAttribute("data-fcp", String(p.startTime)); }
    });
  }).observe({type: "paint", buffered: true});
})();"""


def chromium(index: Path, binary: str) -> dict[str, Any]:
    html = index.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(MEASURE.encode()).digest()).decode()
    html = re.sub(r"script-src '", f"script-src 'sha256-{digest}' '", html, count=1)
    html = html.replace("</body>", f"<script>{MEASURE}</script>\n</body>")
    page = index.with_name("index_measured.html")
    page.write_text(html, encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="dbgauto-chromium-") as tmp:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        wall = time.perf_counter() - t0
    m = re.search(r'<pre id="bench"(?: data-fcp="([^"]*)")?>([^<]*)</pre>', res.stdout)
    if not m:
        return {"error": "no measurement in the DOM (script blocked?)", "stderr": res.stderr[-500:]}
    out = json.loads(m.group(2).replace("&quot;", '"'))
    out = {k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()}
    out["fcp_ms"] = float(m.group(1)) if m.group(1) else None
    out["check"] = _check(index.with_name("index.csv"), out)
    out["chromium_wall_s"] = round(wall, 2)
    return out


def _check(csv_path: Path, got: dict[str, Any]) -> str:
    """The page's answers against index.csv read here (same rows): the first name after sorting by name,
    the newest crash time first after sorting by time twice (descending), the failed count."""
    import csv

    if not csv_path.exists():
        return "no index.csv"
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    want = {
        "first_name": min(r["Dump File"] for r in rows),
        "latest_first": max(r["Crash Time"] for r in rows),
        "status_failed_shown": str(sum(r["Status"].startswith("failed") for r in rows)),
    }
    bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) is not None and got.get(k) != v}
    return "ok" if not bad else f"MISMATCH {bad}"


def _fresh(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--new", type=int, default=200, help="new small dumps in the measured batch")
    ap.add_argument("--nightly", action="store_true", help="the catalogued dumps are real files the batch walks")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--baseline", type=Path, help="a checkout of main, measured side by side")
    ap.add_argument("--browser", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    ap.add_argument("--page-only", action="store_true", help="only measure WORK/index.html in the browser")
    ap.add_argument("--cold", action="store_true", help="index step with the catalog out of the OS cache, then warm")
    ap.add_argument("--index-only", action="store_true", help="only the index step, on WORK/populated.sqlite")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        what, *rest = args.child
        if what == "populate":
            files = Path(rest[2]) if len(rest) > 2 else None
            print(json.dumps(child_populate(Path(rest[0]), int(rest[1]), files)))
        elif what == "batch":
            print(json.dumps(child_batch(Path(rest[0]), rest[1:])))
        else:
            print(json.dumps(child_index(Path(rest[0]), Path(rest[1]))))
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="dbgauto-bench-fleet-"))
    if args.page_only:
        print("chromium:", json.dumps(chromium(work / "index.html", args.browser)))
        return 0
    if args.index_only:
        out = work / "out-index"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        shutil.copyfile(work / "populated.sqlite", out / "dbgauto.sqlite")
        for label, code in ([("main", args.baseline)] if args.baseline else []) + [("this", None)]:
            index_step(code, label, out, args.cold)
        return 0
    work.mkdir(parents=True, exist_ok=True)
    n = args.rows
    load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"
    print(f"{n} catalogued dumps, {args.new} new; load average at start {load} on {os.cpu_count()} cores")
    files = (work / "fleet").resolve() if args.nightly else None
    if files is not None and not fleet_file(files, n - 1).exists():
        t0 = time.perf_counter()
        make_fleet_files(files, n)
        print(f"made {n} fleet files in {time.perf_counter() - t0:.1f} s")
    seed = work / "populated.sqlite"
    _fresh(seed)
    pop = run_child(args.baseline, "populate", str(seed), str(n), *([str(files)] if files else []))
    print(
        f"populate ({'main' if args.baseline else 'this'} code): one transaction per result {pop['one_ms']:.3f}"
        f" ms/result ({pop['m']}); chunks of 64 {pop['chunk_ms']:.3f} ms/result; worker-side packing"
        f" {pop['pack_ms']:.3f} ms/result"
    )
    size = seed.stat().st_size
    print(f"size: {size / 1e6:.1f} MB for {n} dumps = {size / n:.0f} bytes/dump (target <= 8192)")
    new = work / "new"
    if not new.is_dir():
        for i in range(args.new):
            p = new / f"NEW{i % 50:02d}" / "Minidump" / f"new{i:04d}.dmp"
            p.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SHARED / "dumps" / "triage_x64.dmp", p)
    scenarios = [("new only", [str(new)])] + ([("nightly", [str(new), str(files)])] if files else [])
    versions = ([("main", args.baseline)] if args.baseline else []) + [("this", None)]
    pages: dict[str, Path] = {}
    for label, code in versions:
        for k, (scenario, sources) in enumerate(scenarios):
            out = work / f"out-{label}-{k}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            shutil.copyfile(seed, out / "dbgauto.sqlite")
            b = run_child(code, "batch", str(out), *sources)
            print(
                f"batch [{label}, {scenario}]: coordinator peak RSS {b['peak_kib'] / 1024:.0f} MB (target <= 150),"
                f" {b['seconds']:.1f} s; found {b['found']}, unchanged {b['unchanged']}, processed"
                f" {b['processed']} ({b['failed']} failed)"
            )
        index_step(code, label, out, args.cold)
        pages[label] = out / "index.html"
    for label, html in pages.items():
        if args.browser:
            print(f"chromium [{label}]:", json.dumps(chromium(html, args.browser)))
        else:
            print("chromium: not installed (apt-get install -y chromium); page not measured")
    print(f"work folder: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
