"""Benchmark the fleet catalog and index at scale (issue 13): record, size, index, and the page in Chromium.

    python benchmarks/bench_fleet.py [--rows 100000] [--work DIR] [--browser chromium]

- record: N results built from the real small dump's facts (../shared), varied (hosts, crash days over 60
  days, 24 bug checks x 60 culprits, 8 driver-list variants), recorded in chunks of 64 (one transaction
  each, as the batch does) vs one transaction per result (the pre-change mode) on the first 2,000;
- size: catalog bytes per dump after a WAL checkpoint (target <= 8 KB);
- index: index.html + index.csv from summary columns in a child process (time, peak RSS; target <= 100 MB
  at 100k) vs loading every row's facts (the pre-change path) for the first 5,000 rows;
- page: index.html size; headless Chromium: the time the page script is done rendering its first page
  (performance.now() at the end of the page script, plus first-contentful-paint), a filter and a sort
  (targets <= 2 s and <= 300 ms). The measured copy carries one extra script allowed by its own hash.
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
    day = 1 + (i * 13) % 60
    f["crash_time"] = f"2026-{9 + day // 31:02d}-{1 + day % 30:02d}T{i % 24:02d}:00:00Z"
    drivers = [dict(d) for d in base["drivers"]]
    drivers[-1]["timestamp"] = hex(0x5F000000 + i % 8)
    f["drivers"] = drivers
    f["source"] = dict(base["source"], path=f"/fleet/PC{i % 5000:04d}/Minidump/{i:06d}.dmp")
    return f


def records(base: dict[str, Any], start: int, n: int) -> list[Any]:
    from dbgauto.catalog.records import HeaderFacts, ResultRecord, SourceState

    out = []
    for i in range(start, start + n):
        path = f"/fleet/PC{i % 5000:04d}/Minidump/{i:06d}.dmp"
        failed = i % 50 == 0
        out.append(
            ResultRecord(
                SourceState(path, 1444532, i, f"sha256-1m:{i:064x}"),
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


def record(path: Path, base: dict[str, Any], n: int, chunk: int) -> tuple[float, float]:
    """(coordinator seconds recording, worker seconds packing): records arrive packed, as from workers."""
    from dbgauto.catalog.db import Catalog
    from dbgauto.catalog.summary import pack_facts, summary_of

    packing = recording = 0.0
    with Catalog.open(path) as cat:
        run = cat.start_run({})
        for start in range(0, n, 2000):
            recs = records(base, start, min(2000, n - start))
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
        cat.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return recording, packing


# Peak memory of this process: VmHWM (Linux; ru_maxrss survives exec, so a child would report its parent's)
PEAK = """
def peak_kib():
    try:
        with open("/proc/self/status") as fh:
            return int(next(x for x in fh if x.startswith("VmHWM")).split()[1])
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

CHILD_INDEX = (
    PEAK
    + """
import sys, time, resource
from pathlib import Path
from dbgauto.batch.coordinator import write_index
from dbgauto.catalog.changes import changes_since
from dbgauto.catalog.db import Catalog
t0 = time.perf_counter()
with Catalog.open(sys.argv[1]) as cat:
    write_index(cat, Path(sys.argv[2]), (), changes_since(cat.conn, "2026-01-01"))
print(time.perf_counter() - t0, peak_kib())
"""
)

CHILD_OLD = (
    PEAK
    + """
import sys, time, json, resource
from dbgauto.analysis.facts import CrashFacts
from dbgauto.catalog.db import Catalog
n = int(sys.argv[2])
t0 = time.perf_counter()
with Catalog.open(sys.argv[1]) as cat:  # the first n dumps' newest results, facts unpacked, as main loads them
    rows = cat._with_facts([dict(r) for r in cat.conn.execute("SELECT * FROM latest ORDER BY path LIMIT ?", (n,))])
    facts = [CrashFacts.from_dict(json.loads(r["facts"])) for r in rows if r.get("facts")]
print(time.perf_counter() - t0, peak_kib(), len(facts))
"""
)

MEASURE = """(function () {
  var ready = performance.now();
  var f = document.getElementById("filter"), t = document.getElementById("dumps");
  var t0 = performance.now(); f.value = "vendor07"; f.dispatchEvent(new Event("input"));
  var filt = performance.now() - t0, shown = document.getElementById("shown").textContent;
  f.value = ""; f.dispatchEvent(new Event("input"));
  t0 = performance.now(); t.tHead.rows[0].cells[3].click(); var sort = performance.now() - t0;
  var out = document.createElement("pre"); out.id = "bench";
  out.textContent = JSON.stringify({ready_ms: ready, filter_ms: filt, filter_shown: shown, sort_ms: sort});
  document.body.appendChild(out);
  setTimeout(function () {
    var p = performance.getEntriesByName("first-contentful-paint")[0];
    out.setAttribute("data-fcp", p ? String(p.startTime) : "");
  }, 50);
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
    out["fcp_ms"] = float(m.group(1)) if m.group(1) else None
    out["chromium_wall_s"] = round(wall, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--browser", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    ap.add_argument("--page-only", action="store_true", help="only measure WORK/index.html in the browser")
    args = ap.parse_args(argv)
    from dbgauto.engines.jobs import facts_from_dump

    work = args.work or Path(tempfile.mkdtemp(prefix="dbgauto-bench-fleet-"))
    if args.page_only:
        print("chromium:", json.dumps(chromium(work / "index.html", args.browser)))
        return 0
    base = facts_from_dump(SHARED / "dumps" / "triage_x64.dmp").to_dict()
    work.mkdir(parents=True, exist_ok=True)
    n = args.rows
    one = work / "per_result.sqlite"
    chunked = work / "dbgauto.sqlite"
    for p in (one, chunked):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{p}{suffix}").unlink(missing_ok=True)
    m = min(2000, n)
    s1, _ = record(one, base, m, 1)
    s64, pack = record(chunked, base, n, 64)
    print(f"record: {m} results one transaction each: {s1 / m * 1e3:.3f} ms/result ({m / s1:.0f}/s)")
    print(f"record: {n} results in chunks of 64:      {s64 / n * 1e3:.3f} ms/result ({n / s64:.0f}/s)")
    print(f"worker-side packing (summary + zlib + driver digest): {pack / n * 1e3:.3f} ms/result")
    size = chunked.stat().st_size
    print(f"size: {size / 1e6:.1f} MB for {n} dumps = {size / n:.0f} bytes/dump (target <= 8192)")
    res = subprocess.run(
        [sys.executable, "-c", CHILD_INDEX, str(chunked), str(work)], capture_output=True, text=True, check=True
    )
    secs, rss = res.stdout.split()
    html = work / "index.html"
    print(
        f"index from summaries: {float(secs):.2f} s, peak RSS {int(rss) / 1024:.0f} MB;"
        f" index.html {html.stat().st_size / 1e6:.1f} MB, index.csv {(work / 'index.csv').stat().st_size / 1e6:.1f} MB"
    )
    k = min(5000, n)
    res = subprocess.run(
        [sys.executable, "-c", CHILD_OLD, str(chunked), str(k)], capture_output=True, text=True, check=True
    )
    secs, rss, _got = res.stdout.split()
    print(
        f"pre-change path (facts loaded per row) for {k} rows: {float(secs):.2f} s, peak RSS {int(rss) / 1024:.0f} MB"
    )
    if args.browser:
        print("chromium:", json.dumps(chromium(html, args.browser)))
    else:
        print("chromium: not installed (apt-get install -y chromium); page not measured")
    print(f"work folder: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
