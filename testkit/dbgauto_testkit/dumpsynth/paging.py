"""Real page tables for synthetic dumps: x64 4-level, x86 PAE (3-level) and x86 non-PAE (2-level).

Entries are written byte by byte from the processor manuals' layout (kd-structures.md §8), never from
dbgauto's own paging code, so a reader bug cannot be mirrored here. The builder also keeps its own record
of what it mapped (``translate``) so tests compare a reader's table walk against intent, not against
another walk.
"""

from __future__ import annotations

import bisect
import enum
import random
import struct
from dataclasses import dataclass
from typing import Final

from .physmem import PAGE_SIZE, PhysicalMemory, Run

__all__ = ["PAGE_1G", "PAGE_2M", "PAGE_4K", "PAGE_4M", "AddressSpace", "Arch", "Mapping"]

PAGE_4K: Final = 0x1000
PAGE_2M: Final = 0x200000
PAGE_4M: Final = 0x400000
PAGE_1G: Final = 0x40000000

_P, _RW, _A, _D, _PS = 0x1, 0x2, 0x20, 0x40, 0x80
_TABLE_FLAGS: Final = _P | _RW | _A  # 0x23
_LEAF_FLAGS: Final = _P | _RW | _A | _D  # 0x63


class Arch(enum.Enum):
    """Paging mode of the synthetic machine; decides the header (64/32-bit) and the table format."""

    X64 = "x64"
    X86_PAE = "x86pae"
    X86 = "x86"

    @property
    def is_64bit(self) -> bool:
        return self is Arch.X64

    @property
    def large_page_sizes(self) -> tuple[int, ...]:
        return {Arch.X64: (PAGE_2M, PAGE_1G), Arch.X86_PAE: (PAGE_2M,), Arch.X86: (PAGE_4M,)}[self]

    @property
    def max_physical(self) -> int:
        """Highest physical address + 1 a table entry can hold (non-PAE: 4 GiB; PAE: vol3's 40 bits)."""
        return {Arch.X64: 1 << 52, Arch.X86_PAE: 1 << 40, Arch.X86: 1 << 32}[self]


@dataclass(frozen=True, slots=True)
class Mapping:
    """One leaf mapping the builder created: ``size`` bytes of VA at ``va`` → PA at ``pa``."""

    va: int
    pa: int
    size: int


class _Intervals:
    """Disjoint [start, end) PFN intervals with O(log n) overlap checks (allocations and reservations)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self.starts, end) - 1
        return i >= 0 and self.ends[i] > start

    def add(self, start: int, end: int) -> None:
        """Insert [start, end), merging it with every interval it overlaps so the set stays disjoint."""
        i = bisect.bisect_left(self.starts, start)
        if i > 0 and self.ends[i - 1] > start:
            i -= 1
        j = i
        while j < len(self.starts) and self.starts[j] < end:
            j += 1
        if j > i:
            start, end = min(start, self.starts[i]), max(end, self.ends[j - 1])
        self.starts[i:j] = [start]
        self.ends[i:j] = [end]


class _Allocator:
    """Hands out free physical frames (single pages or aligned blocks) inside the RAM runs."""

    def __init__(self, ram_runs: list[Run], placement: str, seed: int) -> None:
        if placement not in ("sequential", "scattered"):
            raise ValueError(f"placement must be 'sequential' or 'scattered', got {placement!r}")
        if not ram_runs:
            raise ValueError("the machine has no RAM")
        self.ram_runs = ram_runs
        self.placement = placement
        self.rng = random.Random(seed)
        self.used = _Intervals()
        self.cursor = ram_runs[0][0]

    def _in_ram(self, start: int, count: int) -> bool:
        return any(b <= start and start + count <= b + c for b, c in self.ram_runs)

    def reserve(self, start: int, count: int) -> None:
        self.used.add(start, start + count)

    def is_free(self, start: int, count: int) -> bool:
        return self._in_ram(start, count) and not self.used.overlaps(start, start + count)

    def alloc(self, count: int = 1, *, zone_end: int | None = None) -> int:
        """First PFN of ``count`` free frames aligned to ``count`` (``count`` is 1 or a large-page size).

        Scattered frames land below ``zone_end`` when given, so that small pages strewn over all of RAM do
        not leave every 1 GiB block dirty (the fallback is a linear search over all RAM).
        """
        found = self._scattered(count, zone_end) if self.placement == "scattered" else None
        if found is None:
            found = self._sequential(count)
        self.used.add(found, found + count)
        return found

    def _scattered(self, count: int, zone_end: int | None) -> int | None:
        lo, hi = self.ram_runs[0][0], self.ram_runs[-1][0] + self.ram_runs[-1][1]
        if zone_end is not None:
            hi = max(min(hi, zone_end), lo + count)
        slots = (hi - count) // count - (lo + count - 1) // count + 1
        if slots <= 0:
            return None
        first_slot = (lo + count - 1) // count
        for _ in range(64):
            start = (first_slot + self.rng.randrange(slots)) * count
            if self.is_free(start, count):
                return start
        return None  # crowded: fall back to a linear search

    def _sequential(self, count: int) -> int:
        for origin in (self.cursor, self.ram_runs[0][0]):  # second pass wraps to reuse holes
            start = -(-origin // count) * count
            end = self.ram_runs[-1][0] + self.ram_runs[-1][1]
            while start + count <= end:
                if self.is_free(start, count):
                    self.cursor = start + count
                    return start
                start += count
        raise MemoryError(f"no free aligned block of {count} pages left in the synthetic RAM")


class AddressSpace:
    """Builds a machine's physical memory and one address space's page tables.

    ``map(va, data)`` allocates frames (``placement``: "sequential" bump allocation or "scattered" random
    frames from ``seed``), writes the bytes, and creates every missing table level. The top table lives at
    ``dtb``: the PML4 (x64), a 32-byte-aligned 4-entry PDPT placed ``pdpt_offset`` bytes into its page (PAE),
    or the page directory (non-PAE); pass ``dtb`` to choose that address (low bits such as a PCID are kept in
    ``dtb``, the header value, and masked off for the table itself: ~0xFFF, or ~0x1F on PAE). Large pages
    mark all their frames present so every byte they map can be read back from a bitmap dump. Use
    :meth:`sibling` for a second address space (a process) over the same RAM and allocator. ``nx`` sets the
    execute-disable bit 63 in every leaf (x64/PAE) and ``pat_large`` the PAT bit 12 in large-page entries:
    bits that are not address bits, which a correct walker masks off.
    """

    def __init__(
        self,
        arch: Arch | str = Arch.X64,
        *,
        ram_bytes: int = 64 << 20,
        ram_runs: list[Run] | None = None,
        placement: str = "sequential",
        seed: int = 0,
        pdpt_offset: int = 0x20,
        dtb: int | None = None,
        memory: PhysicalMemory | None = None,
        nx: bool = False,
        pat_large: bool = False,
    ) -> None:
        self.arch = Arch(arch)
        # Optional leaf bits that are not part of the frame address; readers must mask them off.
        self._nx_bit = 1 << 63 if nx and self.arch is not Arch.X86 else 0  # XD: x64 and PAE entries only
        self._pat_bit = 0x1000 if pat_large else 0  # PAT bit of a large-page entry (bit 12)
        if ram_runs is None:  # a PC-like layout: a hole for legacy ROM/video below 1 MiB, PFN 0 reserved
            pages = ram_bytes // PAGE_SIZE
            ram_runs = [(0x1, 0x9E), (0x100, pages - 0x100)] if pages > 0x200 else [(0x1, pages - 1)]
        if ram_runs and (ram_runs[-1][0] + ram_runs[-1][1]) * PAGE_SIZE > self.arch.max_physical:
            raise ValueError(f"RAM beyond {self.arch.max_physical:#x} cannot be mapped by {self.arch.value} tables")
        self.memory = memory if memory is not None else PhysicalMemory(ram_runs)
        self._alloc = _Allocator(self.memory.ram_runs, placement, seed)
        ram = self.memory.ram_runs  # scattered small and mid-size pages stay in the lower half of RAM
        self._small_zone_end = (ram[0][0] + ram[-1][0] + ram[-1][1]) // 2
        for pfn in self.memory.explicit_pfns():
            self._alloc.reserve(pfn, 1)
        self._leaves: dict[int, dict[int, int]] = {}  # page size → {va page base → pa}
        self._tables: dict[int, int] = {}  # pa of an entry → pa of the table it points to
        self._table_pfns: set[int] = set()
        if dtb is not None:  # the caller's CR3 (e.g. a real dump's): the top table goes exactly there
            self._top, self.dtb = self._claim_top(dtb), dtb
        elif self.arch is Arch.X86_PAE:
            if pdpt_offset % 32 or not 0 <= pdpt_offset <= PAGE_SIZE - 32:
                raise ValueError("pdpt_offset must be a multiple of 32 inside the page")
            self._top = self.dtb = self._new_table() + pdpt_offset
        else:
            self._top = self.dtb = self._new_table()

    # -- structure of each mode ------------------------------------------------------------------------
    @property
    def _entry(self) -> struct.Struct:
        return struct.Struct("<I") if self.arch is Arch.X86 else struct.Struct("<Q")

    def _levels(self, va: int) -> list[tuple[int, int]]:
        """(index, bytes mapped by one entry) for every level, top first."""
        if self.arch is Arch.X64:
            return [((va >> s) & 0x1FF, 1 << s) for s in (39, 30, 21, 12)]
        if self.arch is Arch.X86_PAE:
            return [((va >> 30) & 0x3, PAGE_1G), ((va >> 21) & 0x1FF, PAGE_2M), ((va >> 12) & 0x1FF, PAGE_4K)]
        return [((va >> 22) & 0x3FF, PAGE_4M), ((va >> 12) & 0x3FF, PAGE_4K)]

    def _check_va(self, va: int) -> None:
        if self.arch is Arch.X64:
            top = va >> 47
            if top not in (0, (1 << 17) - 1):
                raise ValueError(f"{va:#x} is not a canonical x64 address")
        elif not 0 <= va < 1 << 32:
            raise ValueError(f"{va:#x} is outside the 32-bit address space")

    def _claim_top(self, dtb: int) -> int:
        """Reserve the frame a caller-chosen DTB points at; returns the top table's physical address."""
        top = dtb & ~0x1F if self.arch is Arch.X86_PAE else dtb & ~0xFFF
        frame = top // PAGE_SIZE
        if not self._alloc.is_free(frame, 1):
            raise ValueError(f"DTB frame {frame:#x} is not free RAM")
        self._alloc.reserve(frame, 1)
        self._table_pfns.add(frame)
        self.memory.write(frame * PAGE_SIZE, bytes(PAGE_SIZE))
        return top

    def _new_table(self) -> int:
        pfn = self._alloc.alloc(1, zone_end=self._small_zone_end)
        self._table_pfns.add(pfn)
        self.memory.write(pfn * PAGE_SIZE, bytes(PAGE_SIZE))
        return pfn * PAGE_SIZE

    def _read_entry(self, entry_pa: int) -> int:
        return self._entry.unpack(self.memory.read(entry_pa, self._entry.size))[0]

    def _write_entry(self, entry_pa: int, value: int) -> None:
        self.memory.write(entry_pa, self._entry.pack(value))

    # -- building --------------------------------------------------------------------------------------
    def _map_leaf(self, va_base: int, pa: int, page_size: int) -> None:
        levels = self._levels(va_base)
        table = self._top
        for depth, (index, span) in enumerate(levels):
            entry_pa = table + index * self._entry.size
            if span == page_size:
                if self._read_entry(entry_pa) & _P:
                    raise ValueError(f"{va_base:#x} is already mapped")
                large_bits = _PS | self._pat_bit if depth < len(levels) - 1 else 0
                flags = _LEAF_FLAGS | large_bits | self._nx_bit
                self._write_entry(entry_pa, pa | flags)
                return
            entry = self._read_entry(entry_pa)
            if entry & _P:
                if entry & _PS and depth > 0:
                    raise ValueError(f"{va_base:#x} lies inside an existing large page")
                table = self._tables[entry_pa]
                continue
            child = self._new_table()
            pdpte = self.arch is Arch.X86_PAE and depth == 0  # PAE PDPTEs allow only the Present bit
            self._write_entry(entry_pa, child | (_P if pdpte else _TABLE_FLAGS))
            self._tables[entry_pa] = child
            table = child
        raise ValueError(f"page size {page_size:#x} is not supported by {self.arch.value}")

    def map(
        self,
        va: int,
        data: bytes = b"",
        *,
        size: int | None = None,
        page_size: int = PAGE_4K,
        pa: int | None = None,
    ) -> int:
        """Map ``va``..``va + max(len(data), size)`` and store ``data`` there; returns the PA of ``va``.

        Pages already mapped (with the same page size) are reused, so ``map`` can also patch bytes into an
        existing mapping. With ``pa`` the new pages map contiguous physical memory from ``pa`` (aligned to
        ``page_size`` like ``va``) instead of allocated frames. Mapped frames are marked present.
        """
        if page_size != PAGE_4K and page_size not in self.arch.large_page_sizes:
            raise ValueError(f"{self.arch.value} has no {page_size:#x}-byte pages")
        length = max(len(data), size or 0, 1)
        self._check_va(va)
        self._check_va(va + length - 1)
        if pa is not None and (pa - va) % page_size:
            raise ValueError("pa and va must have the same offset inside the page")
        leaves = self._leaves.setdefault(page_size, {})
        first = va - va % page_size
        for base in range(first, va + length, page_size):
            if base in leaves:
                continue
            if self.translate(base) is not None or self._overlaps_other_size(base, page_size):
                raise ValueError(f"{base:#x} is already mapped with another page size")
            count = page_size // PAGE_SIZE
            if pa is None:
                largest = page_size == max(self.arch.large_page_sizes)
                frame = self._alloc.alloc(count, zone_end=None if largest else self._small_zone_end) * PAGE_SIZE
            else:
                frame = pa - pa % page_size + (base - first)
                self._alloc.reserve(frame // PAGE_SIZE, count)
            if frame + page_size > self.arch.max_physical:
                raise ValueError(f"frame {frame:#x} is beyond what {self.arch.value} entries can hold")
            self._map_leaf(base, frame, page_size)
            leaves[base] = frame
            self.memory.add_present(frame // PAGE_SIZE, count)
        if data:
            self.write_virtual(va, data)
        result = self.translate(va)
        assert result is not None
        return result

    def _overlaps_other_size(self, base: int, page_size: int) -> bool:
        for other, leaves in self._leaves.items():
            if other == page_size:
                continue
            if other > page_size and (base - base % other) in leaves:
                return True
            if other < page_size and any(base <= v < base + page_size for v in leaves):
                return True
        return False

    def write_virtual(self, va: int, data: bytes) -> None:
        """Write through existing mappings (raises ValueError on an unmapped byte)."""
        view = memoryview(bytes(data))
        while view:
            pa = self.translate(va)
            if pa is None:
                raise ValueError(f"{va:#x} is not mapped")
            chunk = min(len(view), PAGE_SIZE - va % PAGE_SIZE)
            self.memory.write(pa, view[:chunk])
            va += chunk
            view = view[chunk:]

    def write_physical(self, pa: int, data: bytes, *, allow_tables: bool = False) -> None:
        """Raw physical write; the frames are reserved so later allocations never reuse them.

        Writing over a page-table page raises ValueError unless ``allow_tables`` (to build corrupt tables).
        """
        first, last = pa // PAGE_SIZE, (pa + max(len(data), 1) - 1) // PAGE_SIZE
        if not allow_tables and self._table_pfns.intersection(range(first, last + 1)):
            raise ValueError(f"{pa:#x}+{len(data):#x} overwrites a page table (pass allow_tables=True)")
        for pfn in range(first, last + 1):
            self._alloc.reserve(pfn, 1)
        self.memory.write(pa, data)

    def alloc_frames(self, count: int = 1) -> int:
        """Physical address of ``count`` fresh frames (aligned to ``count``), marked present."""
        pfn = self._alloc.alloc(count, zone_end=self._small_zone_end)
        self.memory.add_present(pfn, count)
        return pfn * PAGE_SIZE

    def sibling(self, *, dtb: int | None = None, share_kernel: bool = True) -> AddressSpace:
        """Another address space (a process) on the same RAM and frame allocator, with its own top table.

        With ``share_kernel`` the kernel half's top-level entries (x64 PML4 256-511, PAE PDPTE 2-3, non-PAE
        PDE 512-1023) are copied, so kernel VAs mapped *so far* translate the same in both; later kernel
        mappings that need a new top-level entry are not shared.
        """
        other = object.__new__(AddressSpace)
        other.arch, other.memory, other._alloc = self.arch, self.memory, self._alloc
        other._small_zone_end, other._table_pfns = self._small_zone_end, self._table_pfns
        other._leaves, other._tables = {}, {}
        other._nx_bit, other._pat_bit = self._nx_bit, self._pat_bit
        if dtb is not None:
            other._top, other.dtb = other._claim_top(dtb), dtb
        else:
            offset = self._top % PAGE_SIZE if self.arch is Arch.X86_PAE else 0
            other._top = other.dtb = other._new_table() + offset
        if share_kernel:
            first, count = {Arch.X64: (256, 512), Arch.X86_PAE: (2, 4), Arch.X86: (512, 1024)}[self.arch]
            size = self._entry.size
            self.memory.write(
                other._top + first * size, self.memory.read(self._top + first * size, (count - first) * size)
            )
            for index in range(first, count):
                child = self._tables.get(self._top + index * size)
                if child is not None:
                    other._tables[other._top + index * size] = child
            kernel_floor = {Arch.X64: 0xFFFF800000000000, Arch.X86_PAE: 0x80000000, Arch.X86: 0x80000000}[self.arch]
            for page_size, leaves in self._leaves.items():
                other._leaves[page_size] = {va: pa for va, pa in leaves.items() if va >= kernel_floor}
        return other

    @property
    def top_table(self) -> int:
        """Physical address of the top-level table (``dtb`` without its low flag/PCID bits)."""
        return self._top

    # -- what was built --------------------------------------------------------------------------------
    def translate(self, va: int) -> int | None:
        """The PA the builder mapped ``va`` to (its own record, not a table walk), or None."""
        for page_size, leaves in self._leaves.items():
            frame = leaves.get(va - va % page_size)
            if frame is not None:
                return frame + va % page_size
        return None

    def read_virtual(self, va: int, size: int) -> bytes:
        """The bytes a correct reader must return at ``va`` (raises ValueError on an unmapped byte)."""
        out = bytearray()
        while size > 0:
            pa = self.translate(va)
            if pa is None:
                raise ValueError(f"{va:#x} is not mapped")
            chunk = min(size, PAGE_SIZE - va % PAGE_SIZE)
            out += self.memory.read(pa, chunk)
            va += chunk
            size -= chunk
        return bytes(out)

    def mappings(self) -> list[Mapping]:
        """Every leaf mapping, sorted by VA."""
        return sorted(
            (Mapping(va, pa, size) for size, leaves in self._leaves.items() for va, pa in leaves.items()),
            key=lambda m: m.va,
        )

    @property
    def pae(self) -> bool:
        return self.arch is Arch.X86_PAE
