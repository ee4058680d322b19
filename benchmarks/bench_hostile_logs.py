"""Debugger-log parsers on hostile text: seconds per MB for each adversarial shape (linear parsers stay flat as
the size grows; the quadratic regexes fuzzing found took 7.9 s for 8,000 lines and 73 s for 16,000).

    python benchmarks/bench_hostile_logs.py [--mb 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "debugtext"))
from test_linear_time import NAMES, PARSERS, _text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=float, default=1.0)
    args = ap.parse_args()
    size = int(args.mb * (1 << 20))
    print(f"{'shape':<28}" + "".join(f"{p:>16}" for p in PARSERS))
    for name in NAMES:
        text = _text(name, size)
        cells = []
        for func, _bound in PARSERS.values():
            start = time.perf_counter()
            func(text)
            cells.append(time.perf_counter() - start)
        print(f"{name:<28}" + "".join(f"{c:>15.3f}s" for c in cells))


if __name__ == "__main__":
    main()
