"""Benchmark the verdict of a small dump (issue 16: unwind + identity + culprit + bucket ≤ 3 ms in-process, warm).

The dump is opened and its KernelParts read once (as a native session or batch task does); what is timed is
``facts_from_parts`` — the unwound stack from the exception context, the identity search and table cross-check,
the attribution table and the bucket — plus, separately, each step alone. Best and median of 7 rounds.
Usage: ``python benchmarks/bench_verdict.py [--shared DIR]`` (default ../shared, or $DBGAUTO_SHARED).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from dbgauto.analysis.from_dump import facts_from_parts
from dbgauto.analysis.stack import unwound_stack
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.identity import identity_of
from dbgauto.kernel.open import read_parts

REPO = Path(__file__).resolve().parent.parent


def rounds(fn: Callable[[], object], *, number: int, repeat: int = 7) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        out.append((time.perf_counter() - t0) / number)
    return out


def show(label: str, times: list[float]) -> None:
    print(f"{label:<44} best {min(times) * 1e3:8.3f} ms   median {statistics.median(times) * 1e3:8.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("DBGAUTO_SHARED", REPO.parent / "shared")))
    args = ap.parse_args()
    path = args.shared / "dumps" / "triage_x64.dmp"
    dump = KernelDump.open(path)
    parts = read_parts(dump)
    code = dump.header.bugcheck_code
    params = list(dump.header.bugcheck_parameters or ())
    facts_from_parts(dump, parts, source=None)  # warm: bug check table, inbox list, templates of the codec
    show("verdict (facts_from_parts, warm)", rounds(lambda: facts_from_parts(dump, parts, source=None), number=200))
    show("  unwound stack", rounds(lambda: unwound_stack(parts, bugcheck_code=code, parameters=params), number=200))
    show("  identity (search + table)", rounds(lambda: identity_of(parts), number=200))
    f = facts_from_parts(dump, parts, source=None)
    c = f.culprit
    print(f"culprit {c.name if c else None} ({c.rule if c else ''}); bucket {f.bucket_id}")


if __name__ == "__main__":
    main()
