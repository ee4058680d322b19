#!/usr/bin/env python3
"""Benchmark: a report set (index.html + per-dump HTML + JSON) for 1,000 small dumps, on one core.

The facts come from the real small dump (``../shared/dumps/triage_x64.dmp``, parsed once with the native
reader) varied per dump: crash time, bug check and parameters, the faulting driver (the culprit is then
chosen by the real rule), OS build, file name. Target: <= 10 s. Usage:

    python benchmarks/bench_report.py [--count 1000] [--dump PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from dbgauto.analysis.culprit import CODE_ADDRESS_PARAMETER, find_culprit
from dbgauto.analysis.facts import CrashFacts, SourceFact
from dbgauto.analysis.facts import describe_bugcheck as describe
from dbgauto.engines.jobs import facts_from_dump
from dbgauto.report.render import ReportRenderer

SHARED = Path(os.environ.get("DBGAUTO_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))
DEFAULT_DUMP = SHARED / "dumps" / "triage_x64.dmp"
CODES = (0x1000007E, 0xD1, 0x50, 0x3B, 0x124, 0x133, 0x139, 0x1E, 0x0A, 0x7F, 0xEF, 0x9F)
BUILDS = (19041, 19042, 19044, 19045, 22000, 22621, 22631, 26100)


def vary(real: CrashFacts, count: int, *, seed: int = 6) -> list[CrashFacts]:
    """``count`` plausible fleet dumps derived from one real dump (deterministic for a seed)."""
    rng = random.Random(seed)
    drivers = [d for d in real.drivers if d.size]
    third = [d for d in drivers if d.third_party] or drivers
    start = real.crash_time or real.source.mtime  # type: ignore[union-attr]
    out = []
    for i in range(count):
        code = rng.choice(CODES)
        faulting = rng.choice(third if rng.random() < 0.8 else drivers)
        address = faulting.base + rng.randrange(0x1000, max(0x1001, faulting.size))  # type: ignore[operator]
        params = [rng.getrandbits(32), rng.getrandbits(64), rng.getrandbits(64), rng.getrandbits(64)]
        index = CODE_ADDRESS_PARAMETER.get(code & ~0x10000000 if code > 0xFFFFFFF else code)
        if index:
            params[index - 1] = address
        bugcheck = describe(code, params)
        culprit = find_culprit(
            pc=address,
            bugcheck_code=code,
            bugcheck_parameters=params,
            drivers=drivers,
            stack_values=[f.value for f in real.stack.frames if f.value] if real.stack else [],
        )
        when = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))  # type: ignore[operator]
        name = f"{when:%m%d%y}-{rng.randrange(1000, 99999)}-01.dmp"
        digest = hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()
        out.append(
            replace(
                real,
                source=SourceFact(f"\\\\host-{i % 97:03d}\\Minidump\\{name}", real.source.size, digest, when),  # type: ignore[union-attr]
                crash_time=when,
                bugcheck=bugcheck,
                pc=address,
                culprit=culprit,
                os_build=rng.choice(BUILDS),
                uptime_seconds=rng.uniform(5, 86400 * 9),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--dump", type=Path, default=DEFAULT_DUMP)
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one, removed)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    real = facts_from_dump(args.dump)
    facts = vary(real, args.count)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dbgauto-bench-") as tmp:
        out = args.out or Path(tmp)
        t2 = time.perf_counter()
        c2 = time.process_time()
        renderer = ReportRenderer()
        links = []
        for f in facts:
            links.append(renderer.write_dump_report(f, out, "html").name)
            renderer.write_dump_report(f, out, "json")
        renderer.write_index(facts, out, report_links=links)
        t3 = time.perf_counter()
        c3 = time.process_time()
        files = sum(1 for _ in out.iterdir())
        size = sum(p.stat().st_size for p in out.iterdir())
    print(f"facts: parse 1 real dump + vary to {args.count}: {t1 - t0:.2f} s")
    print(f"report set: {args.count} HTML + {args.count} JSON + index.html = {files} files, {size / 1e6:.1f} MB")
    print(
        f"render+write: {t3 - t2:.2f} s wall, {c3 - c2:.2f} s CPU "
        f"({(t3 - t2) / args.count * 1000:.2f} ms per dump); target <= 10 s"
    )
    return 0 if t3 - t2 <= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
