"""Repeated timing for the benchmarks: seconds per call of ``fn``, one figure per round (best and median are
what the scripts print)."""

from __future__ import annotations

import time
from collections.abc import Callable


def rounds(fn: Callable[[], object], *, number: int, repeat: int = 7) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        out.append((time.perf_counter() - t0) / number)
    return out
