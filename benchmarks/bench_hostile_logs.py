"""Debugger-log parsers on hostile text: seconds per MB for each adversarial shape (linear parsers stay flat as
the size grows; the quadratic regexes fuzzing found took 7.9 s for 8,000 lines and 73 s for 16,000).

    python benchmarks/bench_hostile_logs.py [--mb 1]
"""

from __future__ import annotations

import argparse
import time

from dbgauto_testkit.hostile_logs import NAMES
from dbgauto_testkit.hostile_logs import hostile_text as _text

from dbgauto.analysis.from_log import facts_from_log
from dbgauto.debugtext import parse_analyze, parse_bugcheck, parse_log, parse_stack

PARSERS = {  # the parsers tests/debugtext/test_linear_time.py bounds
    "parse_analyze": parse_analyze,
    "parse_bugcheck": parse_bugcheck,
    "parse_stack": parse_stack,
    "parse_log": parse_log,
    "facts_from_log": facts_from_log,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=float, default=1.0)
    args = ap.parse_args()
    size = int(args.mb * (1 << 20))
    print(f"{'shape':<28}" + "".join(f"{p:>16}" for p in PARSERS))
    for name in NAMES:
        text = _text(name, size)
        cells = []
        for func in PARSERS.values():
            start = time.perf_counter()
            func(text)
            cells.append(time.perf_counter() - start)
        print(f"{name:<28}" + "".join(f"{c:>15.3f}s" for c in cells))


if __name__ == "__main__":
    main()
