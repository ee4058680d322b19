"""Kernel virtual memory of a large dump, page-cached: reads answer bytes or None (a read after the dump was
closed raises :class:`~dbgauto.errors.DumpClosedError`: cached pages must not pass for the whole dump).

Conversion reads about 1,300 scattered pages (pointer windows land all over RAM). Two choices keep its cost
independent of the dump's size and its memory small:

* memory is read with the reader's positional reads (``KernelDump.read_file``, portable: ``dbgauto.util.fs``),
  not through its mmap:
  a page fault on a mapping maps up to 16 neighbouring cached pages ("fault-around") and triggers read-ahead,
  which made the resident size grow by ~64 KiB per page touched (100 MB at 256 GiB) and read far more than
  needed; a small read inside a page not read whole yet (a 256-byte pointer window, a pointer) fetches only
  its bytes;
* the page-table walk is the format layer's (``dbgauto.kdump.paging.WALKERS``), fed by an entry reader that
  reads only the entry and caches it, so repeated walks cost dictionary look-ups.

PFN → file offset stays the reader's (``KernelDump.page_offset``: run list or bitmap rank index). A missing
page is an ordinary answer (kernel dumps lack user memory), so reads return None instead of raising.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

from dbgauto.errors import DumpClosedError, MemoryAccessError, PageNotPresentError, UnsupportedMachineError
from dbgauto.kdump import paging
from dbgauto.kdump.constants import PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from dbgauto.kdump.reader import KernelDump

_PAGE_MASK: Final = ~(PAGE_SIZE - 1)
MAX_CACHED_PAGES: Final = 8192  # 32 MiB at most; conversion touches far fewer
SMALL_READ: Final = 0x200  # reads up to this size inside an uncached page fetch only their bytes
_ENTRY: Final = {4: struct.Struct("<I"), 8: struct.Struct("<Q")}


class DumpMemory:
    """``read(va, size)`` through the header DTB's page tables, with per-page caches; close() when done."""

    def __init__(self, dump: KernelDump) -> None:
        self.dump = dump
        self.pointer_size = 8 if dump.is_64bit else 4
        self._va_mask = 0xFFFF_FFFF_FFFF_FFFF if dump.is_64bit else 0xFFFF_FFFF
        self._pages: dict[int, bytes | None] = {}
        self._entries: dict[int, int] = {}
        self._offsets: dict[int, int | None] = {}
        self._ptr = struct.Struct("<Q" if dump.is_64bit else "<I")
        self._dtb = dump.header.directory_table_base
        try:
            mode = dump.paging_mode or paging.paging_mode(dump.machine, dump.header.pae_enabled, dump.path)
            self._walk = paging.WALKERS[mode]
        except UnsupportedMachineError:
            self._walk = None

    def close(self) -> None:
        """Drop the caches (the file descriptor belongs to the KernelDump and closes with it)."""
        self._pages.clear()
        self._entries.clear()
        self._offsets.clear()

    def _open(self) -> None:
        if getattr(self.dump, "closed", False):
            raise DumpClosedError(self.dump.path)

    # -- physical pages ------------------------------------------------------------------------------------

    def _file_bytes(self, pos: int, size: int) -> bytes | None:
        """``size`` bytes of the dump file at ``pos``; None when cut short."""
        return self.dump.read_file(pos, size)

    def _read_entry(self, pa: int, size: int) -> int:
        """One paging entry, cached by address; only its bytes are read (tables are touched sparsely)."""
        key = pa * 8 + size
        value = self._entries.get(key)
        if value is not None:
            return value
        off = self.dump.page_offset(pa >> PAGE_SHIFT)
        if off is None:
            raise PageNotPresentError(pa, path=self.dump.path)
        raw = self._file_bytes(off + (pa & (PAGE_SIZE - 1)), size)
        if raw is None:
            raise PageNotPresentError(pa, path=self.dump.path)
        value = self._entries[key] = int(_ENTRY[size].unpack(raw)[0])
        return value

    def translate(self, va: int) -> int | None:
        if self._walk is None or self._dtb is None:
            return None
        try:
            return int(self._walk(va, self._dtb, self._read_entry, self.dump.path))
        except MemoryAccessError:
            return None

    def _page_offset(self, page_va: int) -> int | None:
        """File offset of the page at ``page_va`` (cached), or None when it is absent."""
        if page_va in self._offsets:
            return self._offsets[page_va]
        pa = self.translate(page_va)
        off = None if pa is None else self.dump.page_offset(pa >> PAGE_SHIFT)
        self._offsets[page_va] = off
        return off

    def _small(self, va: int, size: int, page_va: int) -> bytes | None:
        """A read inside one page that is not cached: only those bytes (a pointer window needs 256 of 4096)."""
        off = self._page_offset(page_va)
        return None if off is None else self._file_bytes(off + (va - page_va), size)

    def page(self, page_va: int) -> bytes | None:
        """The 4 KiB page at ``page_va`` (page-aligned), or None when it does not translate or is absent."""
        self._open()
        if page_va in self._pages:
            return self._pages[page_va]
        off = self._page_offset(page_va)
        data = None if off is None else self._file_bytes(off, PAGE_SIZE)
        if len(self._pages) < MAX_CACHED_PAGES:
            self._pages[page_va] = data
        return data

    def prefetch(self, ranges: list[tuple[int, int]]) -> None:
        """Ask the OS to start reading these (va, size) ranges now (POSIX_FADV_WILLNEED), so that a batch of
        scattered reads overlaps its disk latency instead of paying it one read at a time. Advisory only."""
        for va, size in ranges:
            va &= self._va_mask
            page_va = va & _PAGE_MASK
            if page_va in self._pages:
                continue
            off = self._page_offset(page_va)
            if off is not None:
                n = min(size, page_va + PAGE_SIZE - va)
                self.dump.advise_willneed(off + (va - page_va), n)

    # -- virtual reads -------------------------------------------------------------------------------------

    def present(self, va: int) -> bool:
        return self.page((va & self._va_mask) & _PAGE_MASK) is not None

    def read(self, va: int, size: int) -> bytes | None:
        """``size`` bytes at ``va``; None if any page of the range is absent."""
        self._open()
        if size <= 0:
            return b""
        va &= self._va_mask
        end = va + size
        if end - 1 > self._va_mask:
            return None
        first = va & _PAGE_MASK
        if (end - 1) & _PAGE_MASK == first:
            if first in self._pages:
                page = self._pages[first]
                return None if page is None else page[va - first : end - first]
            if size <= SMALL_READ:
                return self._small(va, size, first)
            page = self.page(first)
            return None if page is None else page[va - first : end - first]
        data = self.read_prefix(va, size)
        return data if len(data) == size else None

    def read_prefix(self, va: int, size: int) -> bytes:
        """The longest present prefix of ``[va, va+size)`` (possibly empty)."""
        self._open()
        va &= self._va_mask
        parts = []
        addr, end = va, min(va + size, self._va_mask + 1)
        while addr < end:
            pva = addr & _PAGE_MASK
            stop = min(end, pva + PAGE_SIZE)
            if pva not in self._pages and stop - addr <= SMALL_READ:
                chunk = self._small(addr, stop - addr, pva)
                if chunk is None:
                    break
                parts.append(chunk)
            else:
                page = self.page(pva)
                if page is None:
                    break
                parts.append(page[addr - pva : stop - pva])
            addr = stop
        return b"".join(parts)

    def pointer(self, va: int) -> int | None:
        data = self.read(va, self.pointer_size)
        return None if data is None else int(self._ptr.unpack(data)[0])

    def u32(self, va: int) -> int | None:
        data = self.read(va, 4)
        return None if data is None else int(struct.unpack("<I", data)[0])

    def canon(self, value: int) -> int:
        """A KDDEBUGGER_DATA64 pointer (sign-extended on 32-bit kernels) as this machine's VA."""
        return value & self._va_mask
