"""Sparse physical RAM for synthetic dumps: a few explicit pages plus "present" PFN ranges that read as zeros.

A synthetic 256 GiB machine must cost kilobytes, not gigabytes, so nothing here ever holds a page that was
not written explicitly: presence is kept as (base PFN, count) ranges and turned into a bitmap or a run table
only when a dump is written.
"""

from __future__ import annotations

import bisect
import random
import struct
from collections.abc import Iterable, Iterator
from typing import Final

PAGE_SIZE: Final = 0x1000
PAGE_SHIFT: Final = 12

__all__ = [
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PhysicalMemory",
    "clustered_present_runs",
    "normalize_runs",
    "pattern_page",
]

Run = tuple[int, int]  # (first PFN, page count)


def normalize_runs(runs: Iterable[Run]) -> list[Run]:
    """Sort (base, count) ranges and merge the ones that overlap or touch; drop empty ones."""
    out: list[Run] = []
    for base, count in sorted((b, c) for b, c in runs if c > 0):
        if base < 0:
            raise ValueError(f"negative PFN {base}")
        if out and base <= out[-1][0] + out[-1][1]:
            last_base, last_count = out[-1]
            out[-1] = (last_base, max(last_count, base + count - last_base))
        else:
            out.append((base, count))
    return out


def pattern_page(pfn: int, tag: bytes = b"SYNTH") -> bytes:
    """A recognisable 4 KiB page for ``pfn``: every 16-byte slot holds the tag, the PFN and the slot index.

    Lets a benchmark or a reader test stamp a handful of pages and check that a reader returned the right
    page (not just *a* page) without keeping the contents around.
    """
    head = tag[:6].ljust(6, b"\0")
    return b"".join(head + struct.pack("<QH", pfn, slot) for slot in range(PAGE_SIZE // 16))


class PhysicalMemory:
    """The physical memory of a synthetic machine.

    * ``ram_runs``: the machine's RAM layout (what a PHYSICAL_MEMORY_DESCRIPTOR describes); a Complete
      (type 1) dump stores exactly these pages.
    * explicit pages: ``write(pa, data)``; everything else reads as zeros.
    * present ranges: ``add_present(base_pfn, count)``: pages a bitmap dump stores without content.
      Explicit pages are always present.
    """

    def __init__(self, ram_runs: Iterable[Run] | None = None, *, ram_pages: int | None = None) -> None:
        if ram_runs is not None and ram_pages is not None:
            raise ValueError("give ram_runs or ram_pages, not both")
        if ram_pages is not None:
            ram_runs = [(0, ram_pages)]
        self._ram_runs: list[Run] | None = normalize_runs(ram_runs) if ram_runs is not None else None
        self._pages: dict[int, bytearray] = {}
        self._declared: list[Run] = []
        self._present_cache: list[Run] | None = None
        self._cum_cache: list[int] | None = None

    # -- writing -----------------------------------------------------------------------------------------
    def write(self, pa: int, data: bytes) -> None:
        """Store ``data`` at physical address ``pa`` (any alignment, may cross pages)."""
        view = memoryview(bytes(data))
        while view:
            pfn, off = divmod(pa, PAGE_SIZE)
            chunk = min(len(view), PAGE_SIZE - off)
            page = self._pages.get(pfn)
            if page is None:
                page = self._pages[pfn] = bytearray(PAGE_SIZE)
                self._present_cache = None
            page[off : off + chunk] = view[:chunk]
            pa += chunk
            view = view[chunk:]

    def add_present(self, base_pfn: int, count: int = 1) -> None:
        """Declare ``count`` pages from ``base_pfn`` present (zero content unless written)."""
        if count > 0:
            self._declared.append((base_pfn, count))
            self._present_cache = None

    def add_present_runs(self, runs: Iterable[Run]) -> None:
        for base, count in runs:
            self.add_present(base, count)

    def mark_all_ram_present(self) -> None:
        """Every RAM page present: what a Complete (type 5, FDMP) bitmap dump of the machine stores."""
        self.add_present_runs(self.ram_runs)

    # -- reading -----------------------------------------------------------------------------------------
    @property
    def ram_runs(self) -> list[Run]:
        """The RAM layout; when none was given, one run from PFN 0 to the highest present page."""
        if self._ram_runs is not None:
            return list(self._ram_runs)
        present = self.present_runs()
        return [(0, present[-1][0] + present[-1][1])] if present else []

    @property
    def ram_end_pfn(self) -> int:
        """One past the highest PFN that is RAM or present."""
        ends = [b + c for b, c in self.ram_runs[-1:] + self.present_runs()[-1:]]
        return max(ends, default=0)

    def present_runs(self) -> list[Run]:
        """Present pages (declared ranges + explicit pages) as sorted, merged (base, count) runs."""
        if self._present_cache is None:
            self._present_cache = normalize_runs([*self._declared, *((p, 1) for p in self._pages)])
            self._cum_cache = None
        return self._present_cache

    @property
    def present_pages(self) -> int:
        return sum(c for _, c in self.present_runs())

    def explicit_pfns(self) -> list[int]:
        """PFNs that have explicit contents, ascending."""
        return sorted(self._pages)

    def page(self, pfn: int) -> bytes | None:
        """Explicit contents of ``pfn`` or None (zeros)."""
        page = self._pages.get(pfn)
        return bytes(page) if page is not None else None

    def page_view(self, pfn: int) -> memoryview | None:
        page = self._pages.get(pfn)
        return memoryview(page) if page is not None else None

    def is_present(self, pfn: int) -> bool:
        runs = self.present_runs()
        i = bisect.bisect_right(runs, (pfn, 1 << 62)) - 1
        return i >= 0 and runs[i][0] <= pfn < runs[i][0] + runs[i][1]

    def is_ram(self, pfn: int) -> bool:
        return any(b <= pfn < b + c for b, c in self.ram_runs)

    def rank(self, pfn: int) -> int:
        """Number of present pages below ``pfn`` (the page's index in a bitmap dump's data area)."""
        runs = self.present_runs()
        if self._cum_cache is None:
            cum = [0]
            for _, count in runs:
                cum.append(cum[-1] + count)
            self._cum_cache = cum
        i = bisect.bisect_right(runs, (pfn, 1 << 62)) - 1
        if i < 0:
            return 0
        base, count = runs[i]
        return self._cum_cache[i] + min(pfn - base, count)

    def read(self, pa: int, size: int) -> bytes:
        """What a correct reader must return for ``pa``..``pa+size`` (zeros where nothing was written)."""
        out = bytearray()
        while size > 0:
            pfn, off = divmod(pa, PAGE_SIZE)
            chunk = min(size, PAGE_SIZE - off)
            page = self._pages.get(pfn)
            out += page[off : off + chunk] if page is not None else bytes(chunk)
            pa += chunk
            size -= chunk
        return bytes(out)

    def iter_explicit(self) -> Iterator[tuple[int, memoryview]]:
        for pfn in sorted(self._pages):
            yield pfn, memoryview(self._pages[pfn])


def clustered_present_runs(
    total_pages: int,
    fraction: float,
    seed: int = 0,
    *,
    cluster_pages: int = 256,
    first_pfn: int = 0,
) -> list[Run]:
    """Present-page runs covering ``fraction`` of ``total_pages`` exactly, in clusters of ~``cluster_pages``.

    The PFN space is cut into equal slots, one cluster per slot at a random place inside it, cluster sizes
    drawn between half and one and a half ``cluster_pages`` then nudged until the total is exact. Cost is
    proportional to the number of clusters (65,536 for 256 GiB at 25 % with the default), never to RAM.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    span = total_pages - first_pfn
    target = round(span * fraction)
    if target == 0:
        return []
    if target == span:
        return [(first_pfn, span)]
    n = max(1, min(target, round(target / max(1, cluster_pages))))
    bounds = [first_pfn + k * span // n for k in range(n + 1)]  # slot k is bounds[k]..bounds[k+1]
    slots = [bounds[k + 1] - bounds[k] for k in range(n)]
    rng = random.Random(seed)
    low, high = max(1, cluster_pages // 2), max(1, cluster_pages + cluster_pages // 2)
    sizes = [min(slots[k], rng.randint(low, high)) for k in range(n)]
    diff = target - sum(sizes)
    k = 0
    while diff:  # terminates: n <= target <= span = sum(slots)
        step = min(diff, slots[k] - sizes[k]) if diff > 0 else max(diff, 1 - sizes[k])
        sizes[k] += step
        diff -= step
        k = (k + 1) % n
    runs = [(bounds[k] + rng.randint(0, slots[k] - sizes[k]), sizes[k]) for k in range(n)]
    return normalize_runs(runs)
