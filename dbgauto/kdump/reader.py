"""KernelDump: open any Windows kernel crash dump read-only and read its physical and virtual memory.

Opening maps the file (``mmap`` ACCESS_READ, zero-copy), decodes the header, and builds the PFN → file
offset map for the DumpType: validation is O(bitmap bytes) at C speed and nothing per page is allocated, so
a 256 GiB bitmap dump opens in milliseconds. Small (4) and header-only (3) dumps hold no physical memory.
Contract: docs/architecture.md, "Format layer".
"""

from __future__ import annotations

import contextlib
import gc
import logging
import mmap
import os
import stat
import struct
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from dbgauto.errors import (
    DumpClosedError,
    DumpFormatError,
    DumpNotFoundError,
    PageNotPresentError,
    TranslationError,
    UnsupportedDumpTypeError,
    UnsupportedMachineError,
)
from dbgauto.kdump import paging
from dbgauto.kdump.constants import PAGE_SHIFT, PAGE_SIZE, DumpType, Machine
from dbgauto.kdump.detect import sniff
from dbgauto.kdump.header import DumpHeader
from dbgauto.kdump.physmem import (
    BitmapInfo,
    BitmapMap,
    PhysicalMap,
    build_bitmap_map,
    build_rdmp_map,
    build_run_map,
)
from dbgauto.kdump.variety import Variety, classify
from dbgauto.util.fs import PositionalFile

if TYPE_CHECKING:
    from dbgauto.kdump.triage import TriageDump

log = logging.getLogger(__name__)

_BITMAP_TYPES: Final = (DumpType.SUMMARY, DumpType.BITMAP_FULL, DumpType.BITMAP_KERNEL)
_RANGE_TYPES: Final = (DumpType.KERNEL_RANGE, DumpType.KERNEL_USER_RANGE, DumpType.COMPLETE_RANGE)
_NO_MEMORY_TYPES: Final = (DumpType.TRIAGE, DumpType.HEADER)
_ENTRY: Final = {4: struct.Struct("<I"), 8: struct.Struct("<Q")}


def _advise_random(mm: mmap.mmap) -> None:
    """Pages of a dump are read scattered (page tables, kernel structures, the pages a small dump keeps):
    read-ahead only fetches neighbours nobody reads (cold random reads measured 4-15x faster without it).
    Python 3.8+ on POSIX; elsewhere (Windows) a no-op."""
    advice = getattr(mmap, "MADV_RANDOM", None)
    if advice is not None and hasattr(mm, "madvise"):
        try:
            mm.madvise(advice)
        except OSError:
            log.debug("madvise(MADV_RANDOM) refused; reading with the default read-ahead")


class KernelDump:
    """An open kernel dump. Use :meth:`open` (a context manager); every read is served from the mmap."""

    def __init__(self, path: Path, mm: mmap.mmap, file_size: int) -> None:
        self.path = path
        self.file_size = file_size
        self._mmap: mmap.mmap | None = mm
        self.buffer: memoryview = memoryview(mm)
        self.warnings: list[str] = []
        self.bitmap_info: BitmapInfo | None = None
        self._physmap: PhysicalMap | None = None
        self._triage: TriageDump | None = None
        self._paging_mode: str | None = None
        self._paging_error: UnsupportedMachineError | None = None
        self._file: PositionalFile | None = None  # positional reads beside the mmap (see read_file)
        self._closed = False  # set by close(): every later read raises DumpClosedError

        found = sniff(self.buffer, file_size, path)
        self.is_64bit = found.is_64bit
        self.header_size = found.header_size
        self.header = DumpHeader.parse(self.buffer[: self.header_size], path)
        self.warnings.extend(self.header.warnings)
        self.machine: int = self.header.machine if self.header.machine is not None else found.machine
        dt = found.dump_type
        try:
            self.dump_type: int = DumpType(dt)
        except ValueError:
            raise UnsupportedDumpTypeError(path, dt, "not a DumpType Windows writes") from None
        self._build_physical_map()
        self.variety: Variety = classify(
            self.dump_type,
            pages_present=self.pages_present,
            run_table_pages=self.header.physical_memory_pages,
            bitmap_bits=self.bitmap_info.bitmap_bits if self.bitmap_info else None,
            attributes=self.header.attributes,
            bugcheck_code=self.header.bugcheck_code,
        )
        self.paging_levels: int = 4
        if self.machine == Machine.AMD64:
            h = self.header
            self.paging_levels = paging.x64_levels_from_pointers(
                (h.ps_loaded_module_list, h.ps_active_process_head, h.kd_debugger_data_block, h.pfn_database)
            )
        if self.has_physical_memory:
            try:
                self._paging_mode = paging.paging_mode(
                    self.machine, self.header.pae_enabled, path, levels=self.paging_levels
                )
            except UnsupportedMachineError as exc:
                self._paging_error = exc
                self.warnings.append(exc.reason)

    # -- opening and closing -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: os.PathLike[str] | str) -> KernelDump:
        """Map ``path`` read-only and decode it; DumpNotFoundError / DumpFormatError subclasses on failure."""
        p = Path(path)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise DumpNotFoundError(p) from None
        except OSError as exc:
            raise DumpFormatError(p, f"cannot read: {exc.strerror or exc}") from None
        if stat.S_ISDIR(st.st_mode):
            raise DumpFormatError(p, "is a directory, not a dump file")
        if not stat.S_ISREG(st.st_mode):
            raise DumpFormatError(p, "is not a regular file")
        if st.st_size == 0:
            sniff(b"", 0, p)  # raises the "empty file" TruncatedDumpError
        try:
            with open(p, "rb") as f:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise DumpFormatError(p, f"cannot map: {exc.strerror or exc}") from None
        _advise_random(mm)
        dump = cls.__new__(cls)
        try:
            dump.__init__(p, mm, len(mm))  # type: ignore[misc]
        except BaseException:
            dump._physmap = None
            dump.bitmap_info = None
            dump._mmap = mm
            dump.close()
            raise
        return dump

    def close(self) -> None:
        """Unmap the file now, so it can be renamed or deleted (Windows refuses both while it is mapped).

        Caches and parsed parts that hold views into the mapping are dropped first; views kept alive only by
        reference cycles are collected (``gc.collect``) before the unmap is retried. A view a caller still
        holds keeps the file mapped: that is logged as a warning naming the file, :attr:`mapped` stays true,
        and a later ``close()`` (after the view is dropped) unmaps it.
        """
        self._closed = True
        if self._mmap is None:
            return
        self._physmap = None
        self._triage = None
        if self._file is not None:
            self._file.close()
            self._file = None
        self.bitmap_info = None
        if getattr(self, "buffer", None) is not None:
            with contextlib.suppress(BufferError):
                self.buffer.release()
        for attempt in range(2):
            try:
                self._mmap.close()
                break
            except BufferError:  # a view into the mapping is alive
                if attempt == 0:
                    gc.collect()  # views held only by cycles (parsed parts, tracebacks) go now
                    continue
                log.warning(
                    "%s: a view into the dump is still held, so the file stays mapped (on Windows it cannot be "
                    "deleted or renamed) until that view is dropped and close() is called again",
                    self.path,
                )
                return
        self._mmap = None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (reads then raise :class:`DumpClosedError`)."""
        return self._closed

    @property
    def mapped(self) -> bool:
        """True while the file is still mapped (before close, or while a caller holds a view)."""
        return self._mmap is not None and not self._mmap.closed

    def __enter__(self) -> KernelDump:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KernelDump({str(self.path)!r}, dump_type={self.dump_type!r}, machine={self.machine:#x})"

    # -- physical memory -----------------------------------------------------------------------------

    def _build_physical_map(self) -> None:
        dt = self.dump_type
        if dt in _NO_MEMORY_TYPES:
            return
        if dt == DumpType.FULL:
            self._physmap = build_run_map(
                self.header.physical_memory_runs,
                self.header.physical_memory_pages,
                self.file_size,
                self.header_size,
                self.path,
                self.header.run_table_problem,
            )
        elif dt in _BITMAP_TYPES:
            self._physmap, self.bitmap_info = build_bitmap_map(
                self.buffer, self.file_size, self.header_size, self.path, dt
            )
        elif dt in _RANGE_TYPES:
            self._physmap = build_rdmp_map(self.buffer, self.file_size, self.header_size, self.path, dt)
        else:
            raise UnsupportedDumpTypeError(self.path, dt, "this DumpType has no file layout")

    @property
    def has_physical_memory(self) -> bool:
        return self._physmap is not None

    @property
    def physical_map(self) -> PhysicalMap | None:
        return self._physmap

    @property
    def pages_present(self) -> int | None:
        return self._physmap.pages_present if self._physmap is not None else None

    @property
    def pages_total(self) -> int | None:
        """Page frames the dump describes: bitmap bits, or run/range pages (None without physical memory)."""
        if isinstance(self._physmap, BitmapMap):
            return self._physmap.pages_total
        if self._physmap is not None:
            return self.header.physical_memory_pages or self._physmap.pages_total
        return None

    def page_offset(self, pfn: int) -> int | None:
        """File offset of page frame ``pfn``, or None when it is not in the dump; DumpClosedError once closed."""
        if self._closed:
            raise DumpClosedError(self.path)
        if self._physmap is None or pfn < 0:
            return None
        return self._physmap.lookup(pfn)

    def read_physical(self, pa: int, size: int, *, zero_fill: bool = False) -> bytes:
        """``size`` bytes at physical address ``pa``, across pages; PageNotPresentError unless ``zero_fill``."""
        if size < 0:
            raise ValueError(f"negative size {size}")
        if self._closed:
            raise DumpClosedError(self.path)
        if pa < 0:
            raise PageNotPresentError(pa, path=self.path)
        pm = self._physmap
        if pm is None and not zero_fill:
            raise PageNotPresentError(pa, path=self.path)
        buf = self.buffer
        out: list[bytes] = []
        addr, end = pa, pa + size
        while addr < end:
            in_page = addr & (PAGE_SIZE - 1)
            n = min(PAGE_SIZE - in_page, end - addr)
            off = pm.lookup(addr >> PAGE_SHIFT) if pm is not None else None
            if off is None:
                if not zero_fill:
                    raise PageNotPresentError(addr, path=self.path)
                out.append(bytes(n))
            else:
                out.append(bytes(buf[off + in_page : off + in_page + n]))
            addr += n
        return out[0] if len(out) == 1 else b"".join(out)

    def read_file(self, pos: int, size: int) -> bytes | None:
        """``size`` bytes of the file at ``pos`` by a positional read (not through the mapping), None when cut short.

        For scattered reads of huge dumps (conversion): the mapping's fault-around would grow the resident size by
        ~64 KiB per page touched; see :mod:`dbgauto.util.fs`. The descriptor is opened on first use, advised random.
        """
        if self._closed:
            raise DumpClosedError(self.path)
        if self._file is None:
            if self._mmap is None:
                raise DumpClosedError(self.path)
            try:
                self._file = PositionalFile(self.path)
                self._file.advise_random()
            except OSError:
                data = bytes(self.buffer[pos : pos + size])
                return data if len(data) == size else None
        data = self._file.read_at(pos, size)
        return data if len(data) == size else None

    def advise_willneed(self, pos: int, size: int) -> None:
        """Ask the OS to start reading this file range (advisory; a no-op where unsupported)."""
        if self._file is not None:
            self._file.advise_willneed(pos, size)

    def _read_entry(self, pa: int, size: int) -> int:
        pm = self._physmap
        off = pm.lookup(pa >> PAGE_SHIFT) if pm is not None else None
        if off is None:
            raise PageNotPresentError(pa, path=self.path)
        return _ENTRY[size].unpack_from(self.buffer, off + (pa & (PAGE_SIZE - 1)))[0]

    # -- virtual memory ------------------------------------------------------------------------------

    @property
    def paging_mode(self) -> str | None:
        """The page-table format in force (``dbgauto.kdump.paging`` mode name), None when there is none."""
        return self._paging_mode

    def set_paging_levels(self, levels: int) -> None:
        """Use 4- or 5-level (LA57) x64 paging, for a caller that knows better than the header (KDBG, CR4).

        UnsupportedMachineError for 5 levels on anything but AMD64; ValueError for other counts.
        """
        mode = paging.paging_mode(self.machine, self.header.pae_enabled, self.path, levels=levels)
        self.paging_levels = levels
        if self._physmap is not None:
            self._paging_mode, self._paging_error = mode, None

    def translate(self, va: int, *, dtb: int | None = None) -> int:
        """The physical address of ``va`` through the page tables at ``dtb`` (default: the header's DTB)."""
        if self._physmap is None:
            raise TranslationError(va, "the dump holds no physical memory (small or header-only dump)", path=self.path)
        if self._paging_error is not None:
            raise self._paging_error
        if dtb is None:
            dtb = self.header.directory_table_base
            if dtb is None:
                raise TranslationError(va, "the header has no DirectoryTableBase", path=self.path)
        assert self._paging_mode is not None
        return paging.WALKERS[self._paging_mode](va, dtb, self._read_entry, self.path)

    def read_virtual(self, va: int, size: int, *, dtb: int | None = None, zero_fill: bool = False) -> bytes:
        """``size`` bytes at virtual address ``va``; with ``zero_fill`` untranslatable/absent pages read as zeros."""
        if size < 0:
            raise ValueError(f"negative size {size}")
        if self._closed:
            raise DumpClosedError(self.path)
        out: list[bytes] = []
        addr, end = va, va + size
        while addr < end:
            n = min(PAGE_SIZE - (addr & (PAGE_SIZE - 1)), end - addr)
            try:
                pa = self.translate(addr, dtb=dtb)
                out.append(self.read_physical(pa, n))
            except (TranslationError, PageNotPresentError) as exc:
                if not zero_fill:
                    if isinstance(exc, PageNotPresentError):
                        raise PageNotPresentError(addr, physical=False, path=self.path) from exc
                    raise
                out.append(bytes(n))
            addr += n
        return out[0] if len(out) == 1 else b"".join(out)

    # -- small dumps ---------------------------------------------------------------------------------

    @property
    def triage(self) -> TriageDump:
        """The small memory dump's sections (DumpType 4 only), parsed on first access."""
        if self.dump_type != DumpType.TRIAGE:
            raise DumpFormatError(self.path, f"not a small memory dump (DumpType {int(self.dump_type)})")
        if self._triage is None:
            if self._mmap is None:
                raise DumpClosedError(self.path)
            from dbgauto.kdump.triage import TriageDump

            self._triage = TriageDump.parse(self)
        return self._triage

    def summary(self) -> dict[str, Any]:
        """Facts beyond the header that a summary shows (for ``dbgauto info``)."""
        bi = self.bitmap_info
        return {
            "has_physical_memory": self.has_physical_memory,
            "physical_layout": self._physmap.kind if self._physmap is not None else None,
            "pages_present": self.pages_present,
            "pages_total": self.pages_total,
            "bitmap": None
            if bi is None
            else {
                "signature": bi.signature.decode("ascii", "replace"),
                "layout": bi.layout,
                "dump_options": bi.dump_options,
                "first_page": bi.first_page,
                "bitmap_bits": bi.bitmap_bits,
                "total_present_pages": bi.total_present_pages,
            },
            "paging": self._paging_mode,
            "paging_levels": self.paging_levels if self._paging_mode is not None else None,
        }
