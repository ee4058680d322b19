"""Instructions per small dump on the worker path, counted by valgrind: a figure this VM's noise cannot move.

    python benchmarks/bench_instructions.py [--small 100] [--warm 20] [--reports] [--baseline REF] [--ours REF]

Why: on this shared 2-core VM the same code measured 3.7 and 5.7 ms per dump a minute apart, so a 10 % change
in the worker's CPU is invisible in wall or CPU time unless measured many times. ``valgrind --tool=callgrind``
counts the instructions the interpreter executes, which do not depend on the load (repeat runs agree within a
fraction of a percent). The count is not time: it misses cache misses and system calls (the report files'
writes), so the wall-clock benchmark (``bench_batch.py``) stays the figure for throughput; this one says whether
a change made the worker do less.

Each tree (``--ours`` / ``--baseline`` as in ``bench_batch.py``) runs the worker path of the catalog-only batch
(hash, open, symbols, facts, to_dict, summary, packed facts; ``--reports``: also the HTML and JSON reports) in
one process over ``--warm`` dumps and then ``--small`` more, and over the ``--warm`` dumps alone; the difference
divided by ``--small`` is its instructions per dump (start-up, imports and the first dumps' warm-up cancel out).
The dumps are ``bench_batch.py``'s ``kaslr`` set: the real small dump at a new boot's module bases each.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench_batch import SHARED, Tree, make_small_kaslr, ready_trees, real_small_dump, work_folder

WORKER_PATH = """
import sys
from pathlib import Path
from dbgauto.analysis.facts import fingerprint
from dbgauto.catalog.summary import pack_facts, summary_of
from dbgauto.engines.jobs import open_session, session_facts
from dbgauto.report.render import ReportRenderer, json_text
files = sorted(Path(sys.argv[1]).rglob("*.dmp"))
count, reports = int(sys.argv[2]), sys.argv[4] == "1"
renderer = ReportRenderer()
for f in files[:count]:
    s = open_session(f, "native", digest=fingerprint(f), symbol_path=sys.argv[3])
    facts = session_facts(s)
    d = facts.to_dict()
    if reports:
        renderer.render_dump(facts, "html")
        json_text(d)
    summary_of(d)
    pack_facts(d)
    s.close()
"""


def instructions(tree: Tree, src: Path, count: int, reports: bool, out: Path) -> int:
    """Instructions callgrind counted for the worker path over the first ``count`` dumps (start-up included)."""
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", WORKER_PATH]
    cmd += [str(src), str(count), str(SHARED / "symbols"), "1" if reports else "0"]
    res = subprocess.run(cmd, cwd=tree.root, env=tree.env(), capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{tree.name}: the worker path failed under valgrind: {res.stderr[-1500:]}")
    found = re.search(r"Collected\s*:\s*(\d+)", res.stderr)
    if found is None:
        raise SystemExit(f"{tree.name}: no instruction count in valgrind's output: {res.stderr[-500:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", type=int, default=100, help="dumps counted (after the warm-up ones)")
    p.add_argument("--warm", type=int, default=20, help="dumps run first in both runs (they cancel out)")
    p.add_argument("--reports", action="store_true", help="also render the HTML and JSON reports")
    p.add_argument("--baseline", metavar="REF")
    p.add_argument("--ours", metavar="REF")
    p.add_argument("--work", type=Path)
    args = p.parse_args(argv)
    if args.small < 1 or args.warm < 1 or args.warm + args.small < 10:
        p.error("--small and --warm at least 1, and 10 dumps in all (the set has one spec-built dump in ten)")
    if shutil.which("valgrind") is None:
        print("valgrind is needed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    triage = real_small_dump()
    if triage is None:
        return 2
    work = work_folder(args.work, "dbgauto-instr-")
    trees = ready_trees(work, args.ours, args.baseline, triage)
    make_small_kaslr(work / "small", args.warm + args.small, triage)
    per_dump: dict[str, float] = {}
    for tree in trees:
        base = instructions(tree, work / "small", args.warm, args.reports, work / f"cg-{len(per_dump)}-0")
        full = instructions(tree, work / "small", args.warm + args.small, args.reports, work / f"cg-{len(per_dump)}-1")
        per_dump[tree.name] = (full - base) / args.small
        what = "with reports" if args.reports else "catalog only"
        millions = per_dump[tree.name] / 1e6
        print(f"{tree.name}: {millions:.2f} M instructions per small dump ({what}, {args.small} dumps)")
    if len(per_dump) == 2:
        (a, x), (b, y) = per_dump.items()
        print(f"{a} vs {b}: {x / y:.3f}x the instructions")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
