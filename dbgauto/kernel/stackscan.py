"""The stack scan: every pointer-sized value of the stack copy that points into a loaded module.

A scan is what is left without unwind data: most hits are stale return addresses. It is labelled as a scan
wherever it is shown, and the unwinder replaces it where it can.
"""

from __future__ import annotations

import functools
import struct
from bisect import bisect_right
from collections.abc import Sequence
from operator import attrgetter
from typing import NamedTuple

from dbgauto.kdump.records import LoadedDriver

__all__ = ["ModuleIndex", "StackHit", "scan_stack"]


class StackHit(NamedTuple):
    """A pointer-sized stack value that falls inside a loaded driver."""

    address: int
    value: int
    module: str
    offset: int


_new_hit = functools.partial(tuple.__new__, StackHit)  # NamedTuple without the per-call __new__ overhead


class ModuleIndex:
    """Loaded modules sorted by base, for address → module look-ups."""

    def __init__(self, drivers: Sequence[LoadedDriver]) -> None:
        self.ordered = sorted((d for d in drivers if d.size), key=attrgetter("base"))
        self.starts = [d.base for d in self.ordered]
        self.ends = [d.base + d.size for d in self.ordered]

    def at(self, address: int) -> LoadedDriver | None:
        """The module whose image holds ``address``."""
        i = bisect_right(self.starts, address) - 1
        if i >= 0 and address < self.ends[i]:
            return self.ordered[i]
        return None


def scan_stack(
    stack: bytes | None, top_of_stack: int | None, modules: ModuleIndex, pointer_size: int
) -> list[StackHit]:
    """Hits of the stack copy at ``top_of_stack``, lowest address first."""
    if stack is None or top_of_stack is None or not modules.starts:
        return []
    ps = pointer_size
    n = len(stack) // ps
    values = struct.unpack_from(f"<{n}{'Q' if ps == 8 else 'I'}", stack)
    starts, ends, ordered = modules.starts, modules.ends, modules.ordered
    lo, hi = starts[0], max(ends)
    candidates = [i for i, v in enumerate(values) if lo <= v < hi]  # most values are not image addresses
    names: dict[int, str] = {}  # module index -> base name, computed for the modules that are hit
    hits = []
    for i in candidates:
        v = values[i]
        j = bisect_right(starts, v) - 1
        if v < ends[j]:
            name = names.get(j)
            if name is None:
                name = names[j] = ordered[j].base_name
            hits.append(_new_hit((top_of_stack + i * ps, v, name, v - starts[j])))
    return hits
