"""Write synthetic kernel dumps: Complete (type 1, run list) and bitmap (type 5 'FDMP' / type 6 'SDMP').

Files are sparse: the header, the bitmap and the explicitly written pages are the only bytes that reach the
disk; every other page is a hole made by ``truncate``. A 256 GiB machine therefore costs the size of its
bitmap (8 MiB) plus its explicit pages. Layouts follow dump-format.md §7, §9 and §10.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import os
import random
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from .header import HEADER32_SIZE, HEADER64_SIZE, MAX_RUNS32, MAX_RUNS64, HeaderFields, build_header32, build_header64
from .paging import AddressSpace, Arch
from .physmem import PAGE_SIZE, PhysicalMemory, Run, normalize_runs

__all__ = [
    "BITMAP_SUBHEADER_SIZE",
    "DumpInfo",
    "bitmap_from_runs",
    "write_bitmap_dump",
    "write_dump",
    "write_full_dump",
]

BITMAP_SUBHEADER_SIZE: Final = 0x38
_ZERO_PAGE: Final = bytes(PAGE_SIZE)


@dataclass(frozen=True)
class DumpInfo:
    """What was written, so tests and benchmarks know where every page landed without re-parsing."""

    path: Path
    arch: Arch
    dump_type: int
    header_size: int
    file_size: int
    first_page_offset: int  # absolute file offset of the first stored page
    stored_pages: int  # pages in the data area (sum of runs / bits set)
    runs: tuple[Run, ...]  # type 1: the run list in file order; bitmap: the present PFN runs (ascending)
    bitmap_bits: int | None  # bitmap dumps: BitmapSize
    dtb: int | None

    @functools.cached_property
    def _by_pfn(self) -> tuple[list[Run], list[int]]:
        """Runs sorted by PFN with each one's page index in the data area (file order)."""
        position, index_of = 0, {}
        for base, count in self.runs:
            index_of[base] = position
            position += count
        ordered = sorted(self.runs)
        return ordered, [index_of[base] for base, _ in ordered]

    @functools.cached_property
    def _by_index(self) -> list[int]:
        ends, position = [], 0
        for _, count in self.runs:
            position += count
            ends.append(position)
        return ends

    def file_offset(self, pfn: int) -> int | None:
        """File offset of ``pfn``'s page, or None when the dump does not store it (O(log runs))."""
        ordered, index = self._by_pfn
        i = bisect.bisect_right(ordered, (pfn, 1 << 62)) - 1
        if i < 0 or pfn >= ordered[i][0] + ordered[i][1]:
            return None
        return self.first_page_offset + (index[i] + pfn - ordered[i][0]) * PAGE_SIZE

    def pfn_at(self, index: int) -> int:
        """The PFN of the ``index``-th stored page (file order), 0 <= index < stored_pages."""
        if not 0 <= index < self.stored_pages:
            raise IndexError(index)
        ends = self._by_index
        i = bisect.bisect_right(ends, index)
        base, count = self.runs[i]
        return base + index - (ends[i] - count)

    def sample_stored_pfns(self, n: int, seed: int = 0) -> list[int]:
        """``n`` distinct stored PFNs chosen at random (seeded): what a benchmark reads back."""
        rng = random.Random(seed)
        return [self.pfn_at(i) for i in rng.sample(range(self.stored_pages), min(n, self.stored_pages))]


@contextlib.contextmanager
def _atomic_output(path: Path, overwrite: bool) -> Iterator[BinaryIO]:
    """Temp file in the target folder, renamed over ``path`` only when the body succeeded."""
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists (pass overwrite=True)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        mask = os.umask(0)  # mkstemp makes 0600 files; give the dump the mode a plain open() would
        os.umask(mask)
        tmp.chmod(0o666 & ~mask)
        with os.fdopen(fd, "w+b") as fh:
            yield fh
        tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _source(source: AddressSpace | PhysicalMemory, arch: Arch | str | None) -> tuple[PhysicalMemory, Arch, int | None]:
    if isinstance(source, AddressSpace):
        if arch is not None and Arch(arch) is not source.arch:
            raise ValueError(f"arch {arch} disagrees with the address space's {source.arch.value}")
        return source.memory, source.arch, source.dtb
    if arch is None:
        raise ValueError("arch is required when writing a bare PhysicalMemory")
    return source, Arch(arch), None


def _header(arch: Arch, fields: HeaderFields, **auto: object) -> bytearray:
    if arch.is_64bit:
        return build_header64(fields, **auto)
    return build_header32(fields, pae_enabled=arch is Arch.X86_PAE, **auto)


def _write_pages(fh: BinaryIO, memory: PhysicalMemory, offset_of: dict[int, int]) -> None:
    """pwrite every explicit, non-zero page at its file offset; zero pages stay holes."""
    fd = fh.fileno()
    for pfn, page in memory.iter_explicit():
        if page != _ZERO_PAGE:
            os.pwrite(fd, page, offset_of[pfn])


def write_full_dump(
    path: os.PathLike[str] | str,
    source: AddressSpace | PhysicalMemory,
    *,
    arch: Arch | str | None = None,
    fields: HeaderFields | None = None,
    runs: Sequence[Run] | None = None,
    overwrite: bool = False,
) -> DumpInfo:
    """A Complete memory dump, DumpType 1: header, then the pages of ``runs`` (default: the RAM runs) in order.

    Every explicit or present page must lie inside a run (else ValueError: it would silently vanish).
    """
    memory, arch, dtb = _source(source, arch)
    fields = fields or HeaderFields()
    runs = list(runs if runs is not None else memory.ram_runs)
    limit = MAX_RUNS64 if arch.is_64bit else MAX_RUNS32
    if len(runs) > limit:
        raise ValueError(f"{len(runs)} runs exceed the header's room for {limit}")
    sorted_runs = sorted(runs)
    if any(a[0] + a[1] > b[0] for a, b in itertools.pairwise(sorted_runs)):
        raise ValueError("runs overlap")
    header_size = HEADER64_SIZE if arch.is_64bit else HEADER32_SIZE
    starts = {}
    position = 0
    for base, count in runs:
        starts[base] = position
        position += count
    total_pages = position
    file_size = header_size + total_pages * PAGE_SIZE

    def offset(pfn: int) -> int | None:
        i = bisect.bisect_right(sorted_runs, (pfn, 1 << 62)) - 1
        if i >= 0 and pfn < sorted_runs[i][0] + sorted_runs[i][1]:
            return header_size + (starts[sorted_runs[i][0]] + pfn - sorted_runs[i][0]) * PAGE_SIZE
        return None

    covered = normalize_runs(runs)  # adjacent runs merged: a present range may straddle two of them
    for base, count in memory.present_runs():
        if _crosses_gap(covered, base, count):
            raise ValueError(f"present pages {base:#x}+{count:#x} lie outside the dump's runs")
    offsets = {pfn: offset(pfn) for pfn in memory.explicit_pfns()}
    header = _header(
        arch,
        fields,
        directory_table_base=dtb,
        dump_type=1,
        required_dump_space=file_size,
        physical_memory_runs=runs,
    )
    target = Path(path)
    with _atomic_output(target, overwrite) as fh:
        fh.write(header)
        fh.truncate(file_size)
        _write_pages(fh, memory, offsets)  # type: ignore[arg-type]
    return DumpInfo(target, arch, 1, header_size, file_size, header_size, total_pages, tuple(runs), None, dtb)


def _crosses_gap(sorted_runs: list[Run], base: int, count: int) -> bool:
    """True when base..base+count is not inside a single run (the two ends may sit in different runs)."""
    i = bisect.bisect_right(sorted_runs, (base, 1 << 62)) - 1
    return i < 0 or base + count > sorted_runs[i][0] + sorted_runs[i][1]


def bitmap_from_runs(runs: Sequence[Run], bits: int) -> bytearray:
    """LSB-first bitmap of ``bits`` bits with the pages of ``runs`` set; cost ∝ bytes + runs, not pages."""
    bitmap = bytearray((bits + 7) // 8)
    for base, count in runs:
        start, end = base, base + count
        if end > bits:
            raise ValueError(f"run {base:#x}+{count:#x} is beyond the bitmap's {bits:#x} bits")
        while start < end and start & 7:
            bitmap[start >> 3] |= 1 << (start & 7)
            start += 1
        full_end = end & ~7
        if full_end > start:
            bitmap[start >> 3 : full_end >> 3] = b"\xff" * ((full_end - start) >> 3)
            start = full_end
        while start < end:
            bitmap[start >> 3] |= 1 << (start & 7)
            start += 1
    return bitmap


def write_bitmap_dump(
    path: os.PathLike[str] | str,
    source: AddressSpace | PhysicalMemory,
    *,
    dump_type: int = 6,
    arch: Arch | str | None = None,
    fields: HeaderFields | None = None,
    signature: bytes | None = None,
    dump_options: int | None = None,
    bitmap_bits: int | None = None,
    align_first_page: bool = False,
    overwrite: bool = False,
) -> DumpInfo:
    """A bitmap dump: DumpType 6 (Kernel, 'SDMP') or 5 (Complete/Active, 'FDMP') by default.

    The sub-header sits right after the header: signature, 'DUMP', DumpOptions, FirstPage (absolute) at
    +0x20, TotalPresentPages at +0x28, BitmapSize (bits) at +0x30, the bitmap at +0x38; then present pages
    in ascending PFN order. ``bitmap_bits`` defaults to the RAM end rounded up to 64. FirstPage is exact
    (header + 0x38 + bitmap bytes) unless ``align_first_page``. For type 5 call
    ``memory.mark_all_ram_present()`` first if the dump should hold all RAM (Complete rather than Active).
    """
    memory, arch, dtb = _source(source, arch)
    fields = fields or HeaderFields()
    if signature is None:
        signature = b"FDMP" if dump_type == 5 else b"SDMP"  # summary (kernel) dumps: 2 and 6
    if dump_options is None:
        dump_options = 0 if dump_type == 5 else 1  # DUMP_SUMMARY_VALID_KERNEL_VA for kernel dumps
    present = memory.present_runs()
    needed = memory.ram_end_pfn
    bits = bitmap_bits if bitmap_bits is not None else -(-needed // 64) * 64
    if present and present[-1][0] + present[-1][1] > bits:
        raise ValueError(f"bitmap of {bits:#x} bits cannot hold PFN {present[-1][0] + present[-1][1] - 1:#x}")
    bitmap = bitmap_from_runs(present, bits)
    header_size = HEADER64_SIZE if arch.is_64bit else HEADER32_SIZE
    first_page = header_size + BITMAP_SUBHEADER_SIZE + len(bitmap)
    if align_first_page:
        first_page = -(-first_page // PAGE_SIZE) * PAGE_SIZE
    stored = sum(c for _, c in present)
    file_size = first_page + stored * PAGE_SIZE
    ram = memory.ram_runs
    limit = MAX_RUNS64 if arch.is_64bit else MAX_RUNS32
    header = _header(
        arch,
        fields,
        directory_table_base=dtb,
        dump_type=dump_type,
        required_dump_space=file_size,
        physical_memory_runs=ram if len(ram) <= limit else None,  # a copy of MmPhysicalMemoryBlock
    )
    sub = bytearray(BITMAP_SUBHEADER_SIZE)
    struct.pack_into("<4s4sI", sub, 0, signature, b"DUMP", dump_options)
    struct.pack_into("<QQQ", sub, 0x20, first_page, stored, bits)
    offsets = {pfn: first_page + memory.rank(pfn) * PAGE_SIZE for pfn in memory.explicit_pfns()}
    target = Path(path)
    with _atomic_output(target, overwrite) as fh:
        fh.write(header)
        fh.write(sub)
        fh.write(bitmap)
        fh.truncate(file_size)
        _write_pages(fh, memory, offsets)
    return DumpInfo(target, arch, dump_type, header_size, file_size, first_page, stored, tuple(present), bits, dtb)


def write_dump(
    path: os.PathLike[str] | str,
    source: AddressSpace | PhysicalMemory,
    dump_type: int,
    **options: object,
) -> DumpInfo:
    """Dispatch on ``dump_type``: 1 → write_full_dump, 5/6 (or 2 with the modern layout) → write_bitmap_dump."""
    if dump_type == 1:
        return write_full_dump(path, source, **options)  # type: ignore[arg-type]
    if dump_type in (2, 5, 6):
        return write_bitmap_dump(path, source, dump_type=dump_type, **options)  # type: ignore[arg-type]
    raise ValueError(f"dumpsynth writes DumpType 1, 2, 5 and 6, not {dump_type}")
