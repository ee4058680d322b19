"""The exception directory (``.pdata``): RUNTIME_FUNCTION entries for x64 and ARM64.

Lookups binary-search the table one entry at a time, so a table that claims a gigabyte costs ~30 reads, not
a gigabyte: the size is only trusted as far as the image's own size (entries past ``SizeOfImage`` are
refused) and every read is checked.

ARM64 entries hold a begin RVA and one word: when its low two bits (``Flag``) are 0 the word is the RVA of
the ``.xdata`` record, otherwise it is *packed* unwind data whose bits 2..12 are the function length / 4
(Microsoft, "ARM64 exception handling").
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dbgauto.pe import layouts as L

if TYPE_CHECKING:
    from dbgauto.pe.image import PeImage

MAX_ITERATED: Final = 1 << 20
MAX_NESTED_LOOKBACK: Final = 4
_U32 = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class RuntimeFunction:
    """One entry. x64: ``unwind_rva`` is the UNWIND_INFO RVA. ARM64: ``packed`` is the packed word, or None
    and then ``unwind_rva`` is the .xdata RVA. ``end`` is exclusive (None when an ARM64 .xdata header is unreadable)."""

    begin: int
    end: int | None
    unwind_rva: int | None
    packed: int | None = None

    def contains(self, rva: int) -> bool:
        return self.begin <= rva < (self.end if self.end is not None else self.begin + 1)


class ExceptionTable:
    """The RUNTIME_FUNCTION array of one image (x64 or ARM64)."""

    def __init__(self, img: PeImage, rva: int, count: int, arm64: bool) -> None:
        self.image = img
        self.rva = rva
        self.count = count
        self.arm64 = arm64
        self.entry_size = L.RUNTIME_FUNCTION_ARM64.size if arm64 else L.RUNTIME_FUNCTION_X64.size

    @classmethod
    def of(cls, img: PeImage) -> ExceptionTable | None:
        d = img.directory(L.DIR_EXCEPTION)
        if d is None or img.machine not in (L.MACHINE_AMD64, L.MACHINE_ARM64):
            return None
        arm64 = img.machine == L.MACHINE_ARM64
        esize = 8 if arm64 else 12
        count = d.size // esize
        limit = max(img.size_of_image - d.rva, 0) // esize if img.size_of_image else count
        if count > limit:
            img.warnings.append(
                f"exception directory claims {d.size:#x} bytes, past the image end; using {limit} entries"
            )
            count = limit
        return cls(img, d.rva, count, arm64)

    def entry(self, index: int) -> RuntimeFunction | None:
        """Entry ``index`` decoded, or None when it is not readable."""
        if not 0 <= index < self.count:
            return None
        raw = self.image.read_rva(self.rva + index * self.entry_size, self.entry_size)
        if raw is None:
            return None
        if not self.arm64:
            e = L.RUNTIME_FUNCTION_X64.unpack(raw)
            return RuntimeFunction(e["begin"], e["end"], e["unwind_info"])
        e = L.RUNTIME_FUNCTION_ARM64.unpack(raw)
        word = e["unwind_data"]
        if word & 3:
            return RuntimeFunction(e["begin"], e["begin"] + ((word >> 2) & 0x7FF) * 4, None, word)
        hdr = self.image.read_rva(word, 4)
        end = e["begin"] + (_U32.unpack_from(hdr)[0] & 0x3FFFF) * 4 if hdr is not None else None
        return RuntimeFunction(e["begin"], end, word)

    def __iter__(self) -> Iterator[RuntimeFunction]:
        for i in range(min(self.count, MAX_ITERATED)):
            e = self.entry(i)
            if e is None or self._is_padding(e):
                return
            yield e

    def __len__(self) -> int:
        return self.count

    def _is_padding(self, e: RuntimeFunction) -> bool:
        return e.begin == 0 or (e.end is not None and e.end <= e.begin)

    def lookup(self, rva: int) -> RuntimeFunction | None:
        """The entry whose [begin, end) holds ``rva`` (binary search; entries are sorted by begin)."""
        lo, hi = 0, self.count - 1
        found: RuntimeFunction | None = None
        for _ in range(64):
            if lo > hi:
                break
            mid = (lo + hi) // 2
            e = self.entry(mid)
            if e is None:
                return None
            if rva < e.begin or self._is_padding(e):
                hi = mid - 1  # zero padding past the real entries sorts "above" every RVA
            else:
                found = e
                lo = mid + 1
        if found is None:
            return None
        if found.contains(rva):
            return found
        # Fragments may nest inside a parent's range (an assembler's chained fragment): look a few entries back.
        idx = lo - 1
        for j in range(idx - 1, max(idx - 1 - MAX_NESTED_LOOKBACK, -1), -1):
            e = self.entry(j)
            if e is not None and e.contains(rva):
                return e
        return None
