"""A page-cached view of a large dump's kernel virtual memory: reads answer bytes or None, never raise.

Conversion reads a few hundred scattered pages, many of them several times (pointer windows land on the same
pages); caching each translated page once keeps the cost independent of the dump's size. A missing page is an
ordinary answer (kernel dumps lack user memory), so reads return None instead of raising.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

from dbgauto.errors import MemoryAccessError
from dbgauto.kdump.constants import PAGE_SIZE

if TYPE_CHECKING:
    from dbgauto.kdump.reader import KernelDump

_PAGE_MASK: Final = ~(PAGE_SIZE - 1)
MAX_CACHED_PAGES: Final = 8192  # 32 MiB at most; conversion touches far fewer


class DumpMemory:
    """``read(va, size)`` over a KernelDump's page tables (header DTB), with a per-page cache."""

    def __init__(self, dump: KernelDump) -> None:
        self.dump = dump
        self.is_64bit = dump.is_64bit
        self.pointer_size = 8 if dump.is_64bit else 4
        self._va_mask = 0xFFFF_FFFF_FFFF_FFFF if dump.is_64bit else 0xFFFF_FFFF
        self._pages: dict[int, bytes | None] = {}
        self._ptr = struct.Struct("<Q" if dump.is_64bit else "<I")

    def page(self, page_va: int) -> bytes | None:
        """The 4 KiB page at ``page_va`` (page-aligned), or None when it does not translate or is absent."""
        if page_va in self._pages:
            return self._pages[page_va]
        try:
            data: bytes | None = self.dump.read_virtual(page_va, PAGE_SIZE)
        except (MemoryAccessError, ValueError):
            data = None
        if len(self._pages) < MAX_CACHED_PAGES:
            self._pages[page_va] = data
        return data

    def present(self, va: int) -> bool:
        return self.page((va & self._va_mask) & _PAGE_MASK) is not None

    def read(self, va: int, size: int) -> bytes | None:
        """``size`` bytes at ``va``; None if any page of the range is absent."""
        if size <= 0:
            return b""
        va &= self._va_mask
        end = va + size
        if end - 1 > self._va_mask:
            return None
        first = va & _PAGE_MASK
        if (end - 1) & _PAGE_MASK == first:
            page = self.page(first)
            return None if page is None else page[va - first : end - first]
        parts = []
        addr = va
        while addr < end:
            pva = addr & _PAGE_MASK
            page = self.page(pva)
            if page is None:
                return None
            stop = min(end, pva + PAGE_SIZE)
            parts.append(page[addr - pva : stop - pva])
            addr = stop
        return b"".join(parts)

    def read_prefix(self, va: int, size: int) -> bytes:
        """The longest present prefix of ``[va, va+size)`` (possibly empty)."""
        va &= self._va_mask
        parts = []
        addr, end = va, va + size
        while addr < end:
            pva = addr & _PAGE_MASK
            page = self.page(pva)
            if page is None:
                break
            stop = min(end, pva + PAGE_SIZE)
            parts.append(page[addr - pva : stop - pva])
            addr = stop
        return b"".join(parts)

    def pointer(self, va: int) -> int | None:
        data = self.read(va, self.pointer_size)
        return None if data is None else self._ptr.unpack(data)[0]

    def u32(self, va: int) -> int | None:
        data = self.read(va, 4)
        return None if data is None else struct.unpack("<I", data)[0]

    def u64(self, va: int) -> int | None:
        data = self.read(va, 8)
        return None if data is None else struct.unpack("<Q", data)[0]

    def canon(self, value: int) -> int:
        """A KDDEBUGGER_DATA64 pointer (sign-extended on 32-bit kernels) as this machine's VA."""
        return value & self._va_mask
