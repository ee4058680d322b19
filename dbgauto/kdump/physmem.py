"""PFN → file offset for every large-dump layout: run/range lists (bisect) and bitmaps (lazy rank index).

Why no per-page table: a 256 GiB machine has 64 M page frames; a dict or list per page costs gigabytes and
seconds (kdmp-parser builds such a map). Instead:

* run lists (DumpType 1) and RDMP ranges (8/9/0xA) become three sorted ``array('Q')`` columns (first PFN,
  end PFN, file offset) searched with ``bisect``;
* bitmaps (DumpType 2/5/6) are read in place from the mmap. A page's file offset is ``FirstPage + 0x1000 *
  rank(pfn)``, where ``rank`` counts the set bits before it. The rank index stores one running sum per
  512-byte block of the bitmap (``array('Q')``: 1/64 of the bitmap's size), built while opening in the same
  pass that counts the bitmap (:func:`count_and_index`: the bytes are mapped to bit counts once, and each
  block's sum is taken from them), so the bitmap is read once; a lookup adds the popcount of at most one block.

Opening validates in O(bitmap bytes) at C speed: popcount(bitmap) == TotalPresentPages, pages fit in the
file, runs neither overlap nor overflow. Every inconsistency is a :class:`PhysicalMemoryError` subclass
naming the file and the reason.
"""

from __future__ import annotations

import logging
import os
import zlib
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Final, Protocol

from dbgauto.errors import (  # the physical-memory errors live in the one tree; importable from here too
    BadSignatureError,
    BitmapCountMismatchError,
    DumpFormatError,
    PhysicalMemoryError,
    RangeHeaderError,
    RunListError,
    RunListOverflowError,
    TruncatedDumpError,
)
from dbgauto.kdump.constants import (
    FULL_SIGNATURE,
    PAGE_SHIFT,
    PAGE_SIZE,
    RDMP_SIGNATURE,
    SUMMARY_SIGNATURE,
    VALID_DUMP32,
    DumpType,
)
from dbgauto.kdump.structs.header import (
    BITMAP_HEADER,
    BITMAP_HEADER_OLD,
    RDMP_FULL_HEADER,
    RDMP_HEADER,
    RDMP_RANGE,
    RDMP_RANGES_OFFSET,
)
from dbgauto.util.layout import Buffer

log = logging.getLogger(__name__)

MAX_PFN: Final = 1 << 40  # 52-bit physical addresses (x64 and ARM64 architectural maximum)
RANK_BLOCK_BYTES: Final = 512  # 64 words of bitmap per running sum: index = bitmap size / 64
_VALIDATE_CHUNK: Final = 1 << 20  # popcount in 1 MiB slices to bound the temporary big int
_BIT_COUNTS: Final = bytes(i.bit_count() for i in range(256))
_ADLER_SPAN: Final = 8189  # 8 × 8189 + 1 < 65521: Adler-32's byte sum stays exact
MAX_RANGES: Final = 1 << 20  # real RDMP range tables hold hundreds to thousands of ranges


class PhysicalMap(Protocol):
    """What the reader needs from any layout: where a page frame's bytes are in the file."""

    kind: str
    pages_present: int
    pages_total: int | None

    def lookup(self, pfn: int) -> int | None:
        """The file offset of page ``pfn``, or None when the dump does not hold it."""
        ...


class RangeMap:
    """Pages stored range after range: (first PFN, page count, file offset of the first page), bisect lookup."""

    def __init__(self, kind: str, ranges: list[tuple[int, int, int]], pages_total: int | None = None) -> None:
        self.kind = kind
        ranges = sorted(r for r in ranges if r[1] > 0)
        self._starts = array("Q", (r[0] for r in ranges))
        self._ends = array("Q", (r[0] + r[1] for r in ranges))
        self._offsets = array("Q", (r[2] for r in ranges))
        self.pages_present = sum(r[1] for r in ranges)
        self.pages_total = pages_total if pages_total is not None else self.pages_present

    @property
    def ranges(self) -> list[tuple[int, int, int]]:
        """(first PFN, page count, file offset) in PFN order."""
        return [(s, e - s, o) for s, e, o in zip(self._starts, self._ends, self._offsets, strict=True)]

    def lookup(self, pfn: int) -> int | None:
        i = bisect_right(self._starts, pfn) - 1
        if i < 0 or pfn >= self._ends[i]:
            return None
        return self._offsets[i] + ((pfn - self._starts[i]) << PAGE_SHIFT)


class BitmapMap:
    """Bit ``pfn`` set ⇔ page stored; stored pages follow each other in PFN order from ``first_page``."""

    def __init__(
        self,
        kind: str,
        bitmap: memoryview,
        bits: int,
        first_page: int,
        present: int,
        index: array[int] | None = None,
    ) -> None:
        self.kind = kind
        self._bitmap = bitmap
        self.bits = bits
        self.first_page = first_page
        self.pages_present = present
        self.pages_total = bits
        self._index: array[int] | None = index  # from count_and_index, else built on the first lookup

    def _build_index(self) -> array[int]:
        bm = self._bitmap
        fb = int.from_bytes
        n_blocks = (len(bm) + RANK_BLOCK_BYTES - 1) // RANK_BLOCK_BYTES
        index = array("Q", bytes(8 * n_blocks))
        running = 0
        for i in range(n_blocks):
            index[i] = running
            start = i * RANK_BLOCK_BYTES
            running += fb(bm[start : start + RANK_BLOCK_BYTES], "little").bit_count()
        log.debug("rank index: %d blocks for %d bitmap bytes", n_blocks, len(bm))
        return index

    @property
    def index_bytes(self) -> int:
        """Memory held by the rank index (0 until the first lookup)."""
        return 0 if self._index is None else self._index.itemsize * len(self._index)

    def is_present(self, pfn: int) -> bool:
        return 0 <= pfn < self.bits and bool((self._bitmap[pfn >> 3] >> (pfn & 7)) & 1)

    def rank(self, pfn: int) -> int:
        """Set bits strictly below ``pfn``."""
        index = self._index
        if index is None:
            index = self._index = self._build_index()
        byte_pos = pfn >> 3
        block = byte_pos // RANK_BLOCK_BYTES
        start = block * RANK_BLOCK_BYTES
        partial = int.from_bytes(self._bitmap[start:byte_pos], "little").bit_count()
        low = self._bitmap[byte_pos] & ((1 << (pfn & 7)) - 1) if byte_pos < len(self._bitmap) else 0
        return index[block] + partial + low.bit_count()

    def lookup(self, pfn: int) -> int | None:
        if not self.is_present(pfn):
            return None
        return self.first_page + (self.rank(pfn) << PAGE_SHIFT)


def popcount(data: memoryview, bits: int) -> int:
    """Set bits among the first ``bits`` bits of ``data`` (LSB first), at C speed, in 1 MiB slices.

    Each slice is mapped byte → bit count with ``bytes.translate``, and the counts are summed by Adler-32,
    whose low half is 1 + the byte sum modulo 65521: over 8189 bytes of counts (≤ 8 each) it cannot wrap.
    That is about twice as fast as ``int.from_bytes(...).bit_count()``, which dominates opening a big bitmap.
    """
    nbytes = (bits + 7) // 8
    total = 0
    adler = zlib.adler32
    for start in range(0, nbytes, _VALIDATE_CHUNK):
        counts = memoryview(bytes(data[start : min(start + _VALIDATE_CHUNK, nbytes)]).translate(_BIT_COUNTS))
        for j in range(0, len(counts), _ADLER_SPAN):
            total += (adler(counts[j : j + _ADLER_SPAN]) & 0xFFFF) - 1
    extra = nbytes * 8 - bits
    if extra:
        total -= (data[nbytes - 1] >> (8 - extra)).bit_count()
    return total


def count_and_index(data: memoryview, bits: int) -> tuple[int, array[int]]:
    """(set bits among the first ``bits``, the rank index) in one pass over the bitmap.

    The bytes are mapped to bit counts 1 MiB at a time (as :func:`popcount`), and each 512-byte block's sum
    comes from one Adler-32 over its counts (at most 8 × 512 < 65521: exact); the index holds the running sum
    before each block, exactly what :meth:`BitmapMap.rank` needs.
    """
    nbytes = (bits + 7) // 8
    index: array[int] = array("Q")
    running = 0
    adler = zlib.adler32
    for start in range(0, nbytes, _VALIDATE_CHUNK):
        counts = memoryview(bytes(data[start : min(start + _VALIDATE_CHUNK, nbytes)]).translate(_BIT_COUNTS))
        sums = [(adler(counts[j : j + RANK_BLOCK_BYTES]) & 0xFFFF) - 1 for j in range(0, len(counts), RANK_BLOCK_BYTES)]
        before = list(accumulate(sums, initial=running))
        index.extend(before[:-1])
        running = before[-1]
    extra = nbytes * 8 - bits
    if extra:
        running -= (data[nbytes - 1] >> (8 - extra)).bit_count()
    return running, index


@dataclass(frozen=True, slots=True)
class BitmapInfo:
    """The sub-header facts of a bitmap dump (as found, whichever layout)."""

    signature: bytes
    layout: str  # "modern" (BMP_HEADER) or "old-summary" (XP-era SUMMARY_DUMP)
    dump_options: int
    bitmap_offset: int
    bitmap_bits: int
    first_page: int
    total_present_pages: int


def _check_pages_fit(path: os.PathLike[str] | str | None, first: int, pages: int, file_size: int, what: str) -> None:
    end = first + pages * PAGE_SIZE
    if end > file_size:
        raise TruncatedDumpError(
            path, f"{what} claims {pages:#x} pages from file offset {first:#x}", expected=end, actual=file_size
        )


def read_bitmap_info(
    buf: Buffer, file_size: int, header_size: int, path: os.PathLike[str] | str | None, dump_type: int = 6
) -> list[BitmapInfo]:
    """Decode the SDMP/FDMP sub-header at ``header_size``: the modern reading, then (DumpType 2 only) the XP one."""
    if file_size < header_size + BITMAP_HEADER.size:
        raise TruncatedDumpError(
            path, "bitmap sub-header is truncated", expected=header_size + BITMAP_HEADER.size, actual=file_size
        )
    h = BITMAP_HEADER.unpack(buf, header_size)
    if h["signature"] not in (SUMMARY_SIGNATURE, FULL_SIGNATURE) or h["valid_dump"] != VALID_DUMP32:
        raise BadSignatureError(
            path,
            f"bitmap sub-header at {header_size:#x} reads {h['signature'] + h['valid_dump']!r}, expected SDMP/FDMP",
        )
    candidates = [
        BitmapInfo(
            signature=h["signature"],
            layout="modern",
            dump_options=h["dump_options"],
            bitmap_offset=header_size + BITMAP_HEADER.size,
            bitmap_bits=h["bitmap_size"],
            first_page=h["first_page"],
            total_present_pages=h["total_present_pages"],
        )
    ]
    if dump_type == DumpType.SUMMARY:
        old = _old_summary(buf, file_size, header_size)
        if old is not None and _plausible(old, file_size):
            candidates.append(old)
    return candidates


def _plausible(info: BitmapInfo, file_size: int) -> bool:
    bitmap_end = info.bitmap_offset + (info.bitmap_bits + 7) // 8
    return (
        0 < info.bitmap_bits < MAX_PFN
        and bitmap_end <= info.first_page <= file_size
        and info.total_present_pages <= info.bitmap_bits
    )


def _old_summary(buf: Buffer, file_size: int, header_size: int) -> BitmapInfo | None:
    """XP/2003 SUMMARY_DUMP: u32 HeaderSize/BitmapSize/Pages, then an RTL_BITMAP (uncertain layout, spec §10)."""
    if file_size < header_size + BITMAP_HEADER_OLD.size:
        return None
    h = BITMAP_HEADER_OLD.unpack(buf, header_size)
    bitmap_offset = header_size + (0x28 if header_size == 0x2000 else 0x20)
    first = h["header_size"]
    if first < bitmap_offset:  # relative to the sub-header rather than absolute
        first += header_size
    return BitmapInfo(
        signature=h["signature"],
        layout="old-summary",
        dump_options=h["dump_options"],
        bitmap_offset=bitmap_offset,
        bitmap_bits=h["bitmap_size"],
        first_page=first,
        total_present_pages=h["pages"],
    )


def build_bitmap_map(
    buf: memoryview, file_size: int, header_size: int, path: os.PathLike[str] | str | None, dump_type: int
) -> tuple[BitmapMap, BitmapInfo]:
    """Validate the bitmap sub-header (the first reading that holds together wins) and map it."""
    candidates = read_bitmap_info(buf, file_size, header_size, path, dump_type)
    first_error: DumpFormatError | None = None
    for info in candidates:
        try:
            return _validated_bitmap(buf, file_size, header_size, path, dump_type, info), info
        except DumpFormatError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _validated_bitmap(
    buf: memoryview,
    file_size: int,
    header_size: int,
    path: os.PathLike[str] | str | None,
    dump_type: int,
    info: BitmapInfo,
) -> BitmapMap:
    bits = info.bitmap_bits
    nbytes = (bits + 7) // 8
    bitmap_end = info.bitmap_offset + nbytes
    if bits >= MAX_PFN:
        raise RunListOverflowError(path, f"bitmap claims {bits:#x} page frames, beyond 52-bit physical addresses")
    if bitmap_end > file_size:
        raise TruncatedDumpError(
            path, f"bitmap of {bits:#x} bits is truncated", expected=bitmap_end, actual=file_size, offset=header_size
        )
    if info.first_page < bitmap_end:
        raise PhysicalMemoryError(
            path, f"first page offset {info.first_page:#x} lies inside the bitmap (ends {bitmap_end:#x})"
        )
    if info.total_present_pages > bits:
        raise BitmapCountMismatchError(
            path, f"TotalPresentPages {info.total_present_pages:#x} exceeds the bitmap's {bits:#x} bits"
        )
    _check_pages_fit(path, info.first_page, info.total_present_pages, file_size, "bitmap sub-header")
    bitmap = buf[info.bitmap_offset : bitmap_end]
    counted, index = count_and_index(bitmap, bits)
    if counted != info.total_present_pages:
        bitmap.release()
        raise BitmapCountMismatchError(
            path, f"bitmap has {counted:#x} bits set, sub-header says {info.total_present_pages:#x} pages"
        )
    if info.layout != "modern":
        log.info("%s: bitmap sub-header uses the XP-era SUMMARY_DUMP layout", path)
    kind = f"bitmap ({info.signature.decode('ascii', 'replace')}, {info.layout} layout, DumpType {dump_type})"
    return BitmapMap(kind, bitmap, bits, info.first_page, counted, index)


def build_run_map(
    runs: tuple[tuple[int, int], ...] | None,
    number_of_pages: int | None,
    file_size: int,
    header_size: int,
    path: os.PathLike[str] | str | None,
    problem: str | None = None,
) -> RangeMap:
    """DumpType 1: the header's run table; pages follow the header run after run, without holes. ``problem``:
    why the header decoder set the runs aside (None: the table is "PAGE" filler)."""
    if runs is None:
        reason = problem or "the header's run table is absent ('PAGE' filler)"
        raise RunListError(path, f"full dump (DumpType 1) without a usable run table: {reason}")
    ranges = []
    offset = header_size
    for i, (base, count) in enumerate(runs):
        if base + count > MAX_PFN:
            raise RunListOverflowError(
                path, f"run {i} ({base:#x} + {count:#x} pages) reaches past 52-bit physical addresses"
            )
        ranges.append((base, count, offset))
        offset += count * PAGE_SIZE
    total = sum(c for _, c in runs)
    if number_of_pages is not None and number_of_pages != total:
        raise RunListError(path, f"runs hold {total:#x} pages, NumberOfPages says {number_of_pages:#x}")
    _check_pages_fit(path, header_size, total, file_size, "run table")
    _check_no_overlap(ranges, path)
    return RangeMap("runs (DumpType 1)", ranges)


def _check_no_overlap(ranges: list[tuple[int, int, int]], path: os.PathLike[str] | str | None) -> None:
    prev_end = -1
    for base, count, _ in sorted(r for r in ranges if r[1] > 0):
        if base < prev_end:
            raise RunListError(path, f"run at PFN {base:#x} overlaps the previous run (ends {prev_end:#x})")
        prev_end = base + count


def build_rdmp_map(
    buf: Buffer, file_size: int, header_size: int, path: os.PathLike[str] | str | None, dump_type: int
) -> RangeMap:
    """DumpType 8/9/0xA (kdmp-parser's reverse engineering, spec §11): RDMP sub-header + PFN ranges."""
    if header_size != 0x2000:
        raise RangeHeaderError(path, f"RDMP range dumps are 64-bit only (DumpType {dump_type:#x} in a 32-bit header)")
    if file_size < header_size + RDMP_FULL_HEADER.size:
        raise TruncatedDumpError(
            path, "RDMP sub-header is truncated", expected=header_size + RDMP_FULL_HEADER.size, actual=file_size
        )
    h = RDMP_HEADER.unpack(buf, header_size)
    if h["signature"] != RDMP_SIGNATURE or h["valid_dump"] != VALID_DUMP32:
        raise BadSignatureError(
            path, f"range sub-header at {header_size:#x} reads {h['signature'] + h['valid_dump']!r}, expected RDMPDUMP"
        )
    first = h["first_page_offset"]
    meta = h["metadata_size"]
    if meta - RDMP_HEADER.size != first - (header_size + 0x40) or not header_size + RDMP_RANGES_OFFSET <= first:
        raise RangeHeaderError(path, f"RDMP MetadataSize {meta:#x} does not match FirstPageOffset {first:#x}")
    if first > file_size:
        raise TruncatedDumpError(path, "RDMP first page lies past the end", expected=first, actual=file_size)
    table = header_size + RDMP_RANGES_OFFSET
    max_entries = (first - table) // RDMP_RANGE.size
    total_pages: int | None = None
    if dump_type == DumpType.COMPLETE_RANGE:
        f = RDMP_FULL_HEADER.unpack(buf, header_size)
        total_pages = f["total_number_of_pages"]
        max_entries = min(max_entries, f["number_of_ranges"])
    ranges: list[tuple[int, int, int]] = []
    offset = first
    seen = 0
    for i in range(max_entries):
        r = RDMP_RANGE.unpack(buf, table + i * RDMP_RANGE.size)
        base, count = r["page_file_number"], r["number_of_pages"]
        if total_pages is None and base == 0:
            break  # kernel range dumps end their list with PFN 0
        if base + count > MAX_PFN or count > file_size // PAGE_SIZE:
            raise RunListOverflowError(path, f"range {i} ({base:#x} + {count:#x} pages) is impossible")
        ranges.append((base, count, offset))
        offset += count * PAGE_SIZE
        seen += count
        if offset > file_size:  # fail on the first range past the end, not after scanning the whole table
            _check_pages_fit(path, first, seen, file_size, "RDMP ranges")
        if total_pages is not None and seen >= total_pages:
            break
        if i >= MAX_RANGES:
            raise RangeHeaderError(path, f"more than {MAX_RANGES} PFN ranges: not a plausible range table")
    if total_pages is not None and seen != total_pages:
        raise RunListError(path, f"ranges hold {seen:#x} pages, TotalNumberOfPages says {total_pages:#x}")
    _check_pages_fit(path, first, seen, file_size, "RDMP ranges")
    _check_no_overlap(ranges, path)
    return RangeMap(f"ranges (RDMP, DumpType {dump_type:#x})", ranges)
