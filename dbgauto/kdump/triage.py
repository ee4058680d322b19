"""The small memory dump (triage, DumpType 4) reader: every section of TRIAGE_DUMP32/64, plus a VA view.

Why it is strict about bounds: small dumps arrive from customers and crash folders, often truncated or damaged.
Every offset and count is checked against the file size before anything is read or allocated. What makes the
file unreadable (main or triage header missing, a section table pointing past the end, a count needing more bytes
than the file has, no ``TRGD`` marker) raises :class:`TriageFormatError` naming the file, section and offset; a
section that is merely damaged (a name without terminator, a bad KDBG tag, a broken DumpBlob chain) becomes a
string in :attr:`TriageDump.warnings` and the rest still reads.

Layouts: :mod:`dbgauto.kdump.structs.triage` and :mod:`dbgauto.kdump.structs.kd`; facts from
``../shared/spec/triage-format.md`` and the real sample's byte map (``observed-triage-x64.md``).
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import struct
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

from dbgauto.errors import PageNotPresentError, TriageFormatError
from dbgauto.kdump.constants import TRIAGE_VALID, DumpType, Machine
from dbgauto.kdump.layout import Buffer
from dbgauto.kdump.ntoffsets import IMAGE_FILE_NAME_LENGTH, offsets_for
from dbgauto.kdump.structs import kd
from dbgauto.kdump.structs import triage as ts
from dbgauto.kdump.structs.context import (
    EXCEPTION_RECORD32,
    EXCEPTION_RECORD64,
    CpuContext,
    ExceptionRecord,
    context_layout,
    parse_context,
    parse_exception,
)
from dbgauto.kdump.structs.header import HEADER32, HEADER64
from dbgauto.kdump.triage_sections import (
    EMPTY_BLOCKS,
    BlockTable,
    DataBlock,
    DumpBlob,
    DumpBlobFileHeader,
    KdDebuggerData,
    LoadedDriver,
    MmInfo,
    UnloadedDriver,
    parse_blobs,
    parse_data_blocks,
    parse_drivers,
    parse_kdbg,
    parse_mm,
    parse_unloaded,
)
from dbgauto.kdump.triage_view import Region, VirtualView

log = logging.getLogger(__name__)

__all__ = [
    "DataBlock",
    "DumpBlob",
    "DumpBlobFileHeader",
    "KdDebuggerData",
    "LoadedDriver",
    "MmInfo",
    "StackHit",
    "TriageDump",
    "TriageHeader",
    "UnloadedDriver",
]


class StackHit(NamedTuple):
    """A pointer-sized stack value that falls inside a loaded driver."""

    address: int
    value: int
    module: str
    offset: int


_new_hit = functools.partial(tuple.__new__, StackHit)  # NamedTuple without the per-call __new__ overhead


@dataclass(frozen=True, slots=True)
class TriageHeader:
    """Every TRIAGE_DUMP32/64 field (the 32-bit header has no IA-64 BStore fields: they read 0)."""

    service_pack_build: int
    size_of_dump: int
    valid_offset: int
    context_offset: int
    exception_offset: int
    mm_offset: int
    unloaded_drivers_offset: int
    prcb_offset: int
    process_offset: int
    thread_offset: int
    call_stack_offset: int
    size_of_call_stack: int
    driver_list_offset: int
    driver_count: int
    string_pool_offset: int
    string_pool_size: int
    broken_driver_offset: int
    triage_options: int
    top_of_stack: int
    data_page_address: int
    data_page_offset: int
    data_page_size: int
    debugger_data_offset: int
    debugger_data_size: int
    data_blocks_offset: int
    data_blocks_count: int
    bstore_offset: int = 0
    size_of_bstore: int = 0
    limit_of_bstore: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(eq=False)
class TriageDump:
    """A parsed small memory dump. Byte copies are ``bytes``; absent sections are None (or empty lists)."""

    path: Path | None
    buffer: Buffer = field(repr=False)
    is_64bit: bool
    machine: int
    file_size: int
    dump_header: dict[str, Any] = field(repr=False)  # DUMP_HEADER32/64 fields, "PAGE" filler → None
    header: TriageHeader
    context: CpuContext | None = None
    exception: ExceptionRecord | None = None
    mm: MmInfo | None = None
    unloaded_drivers: list[UnloadedDriver] = field(default_factory=list)
    drivers: list[LoadedDriver] = field(default_factory=list)
    broken_driver: LoadedDriver | None = None
    prcb: bytes | None = field(default=None, repr=False)
    process: bytes | None = field(default=None, repr=False)
    thread: bytes | None = field(default=None, repr=False)
    stack: bytes | None = field(default=None, repr=False)
    top_of_stack: int | None = None
    data_page: bytes | None = field(default=None, repr=False)
    kdbg: KdDebuggerData | None = None
    block_table: BlockTable = field(default=EMPTY_BLOCKS, repr=False)
    blob_file_header: DumpBlobFileHeader | None = None
    blobs: list[DumpBlob] = field(default_factory=list)
    valid: bool = False
    warnings: list[str] = field(default_factory=list)

    # --- construction -------------------------------------------------------------------------------------------

    @classmethod
    def parse(cls, dump: Any) -> TriageDump:
        """From an open :class:`~dbgauto.kdump.reader.KernelDump` (uses buffer, path, is_64bit, machine)."""
        return cls.parse_buffer(dump.buffer, path=dump.path, is_64bit=dump.is_64bit, machine=dump.machine)

    @classmethod
    def parse_buffer(
        cls, buf: Buffer, *, path: os.PathLike[str] | str | None, is_64bit: bool, machine: int | None = None
    ) -> TriageDump:
        """Parse a whole small dump held in ``buf`` (an mmap, memoryview or bytes)."""
        return _Parser(buf, Path(path) if path is not None else None, is_64bit, machine).parse()

    # --- derived facts ------------------------------------------------------------------------------------------

    @property
    def pointer_size(self) -> int:
        return 8 if self.is_64bit else 4

    @property
    def build(self) -> int | None:
        return self.dump_header.get("minor_version")

    @cached_property
    def _addresses(self) -> tuple[int | None, int | None, int | None]:
        return _locate_copies(self)

    @property
    def prcb_address(self) -> int | None:
        return self._addresses[0]

    @cached_property
    def processor_number(self) -> int | None:
        """The crashing processor: the PRCB copy's Number field (KDBG OffsetPrcbNumber; u16 on x64, u8 on x86)."""
        k, prcb = self.kdbg, self.prcb
        off = k.get("OffsetPrcbNumber") if k is not None else None
        if prcb is None or not off or off + 2 > len(prcb):
            return None
        return int(struct.unpack_from("<H" if self.is_64bit else "<B", prcb, off)[0])

    @property
    def thread_address(self) -> int | None:
        return self._addresses[1]

    @property
    def process_address(self) -> int | None:
        return self._addresses[2]

    @cached_property
    def memory(self) -> VirtualView:
        """Target VAs served from the copies (see :mod:`dbgauto.kdump.triage_view`)."""
        h = self.header
        copies: list[Region] = []
        if self.stack is not None and self.top_of_stack is not None:
            copies.append(Region(self.top_of_stack, h.call_stack_offset, len(self.stack), "stack"))
        prcb_va, thread_va, process_va = self._addresses
        if self.prcb is not None and prcb_va is not None:
            copies.append(Region(prcb_va, h.prcb_offset, len(self.prcb), "prcb"))
        if self.thread is not None and thread_va is not None:
            copies.append(Region(thread_va, h.thread_offset, len(self.thread), "thread"))
        if self.process is not None and process_va is not None:
            copies.append(Region(process_va, h.process_offset, len(self.process), "process"))
        if self.kdbg is not None and self.kdbg.address is not None:
            copies.append(Region(self.kdbg.address, h.debugger_data_offset, len(self.kdbg.raw), "kdbg"))
        if self.data_page is not None:
            copies.append(Region(h.data_page_address, h.data_page_offset, len(self.data_page), "data_page"))
        return self._blocks_view.with_copies(copies)

    @cached_property
    def _blocks_view(self) -> VirtualView:
        """The data blocks alone (used to locate the PRCB before the full view exists)."""
        mask = 0xFFFFFFFFFFFFFFFF if self.is_64bit else 0xFFFFFFFF
        t = self.block_table
        cols = (t.addresses, t.offsets, t.sizes)
        return VirtualView(self.buffer, copies=(), columns=cols, address_mask=mask, path=self.path)

    @cached_property
    def data_blocks(self) -> list[DataBlock]:
        """The data-block table as rows, in file order."""
        return self.block_table.rows()

    @cached_property
    def _identity(self) -> tuple[str | None, int | None, int | None]:
        return _process_identity(self)

    @property
    def process_name(self) -> str | None:
        return self._identity[0]

    @property
    def pid(self) -> int | None:
        return self._identity[1]

    @property
    def tid(self) -> int | None:
        return self._identity[2]

    @cached_property
    def _driver_index(self) -> tuple[list[int], list[LoadedDriver]]:
        ordered = sorted((d for d in self.drivers if d.size), key=attrgetter("base"))
        return [d.base for d in ordered], ordered

    def driver_at(self, address: int) -> LoadedDriver | None:
        """The loaded driver whose image holds ``address``."""
        starts, ordered = self._driver_index
        i = bisect_right(starts, address) - 1
        if i >= 0 and address < ordered[i].base + ordered[i].size:
            return ordered[i]
        return None

    def stack_scan(self) -> list[StackHit]:
        """Every pointer-sized value of the stack copy that points into a loaded driver, lowest address first."""
        return list(self._stack_hits)

    @cached_property
    def _stack_hits(self) -> tuple[StackHit, ...]:
        if self.stack is None or self.top_of_stack is None:
            return ()
        starts, ordered = self._driver_index
        if not starts:
            return ()
        ps = self.pointer_size
        n = len(self.stack) // ps
        values = struct.unpack_from(f"<{n}{'Q' if ps == 8 else 'I'}", self.stack)
        ends = [d.base + d.size for d in ordered]
        lo, hi = starts[0], max(ends)
        candidates = [i for i, v in enumerate(values) if lo <= v < hi]  # most values are not image addresses
        top = self.top_of_stack
        names: dict[int, str] = {}  # driver index -> base name, computed for the drivers that are hit
        hits = []
        for i in candidates:
            v = values[i]
            j = bisect_right(starts, v) - 1
            if v < ends[j]:
                name = names.get(j)
                if name is None:
                    name = names[j] = ordered[j].base_name
                hits.append(_new_hit((top + i * ps, v, name, v - starts[j])))
        return tuple(hits)

    def blob_data(self, blob: DumpBlob) -> bytes:
        return bytes(self.buffer[blob.data_offset : blob.data_offset + blob.data_size])

    def to_dict(self, *, include_data_blocks: bool = False) -> dict[str, Any]:
        """Everything, JSON-ready. Addresses, offsets, sizes, codes, timestamps: "0x..." strings; counts: ints.

        The data-block table is summarised (count, total bytes, first and last rows); the full list of
        [address, offset, size] rows (60% of the JSON on a typical dump) only with ``include_data_blocks``."""
        from dbgauto.kdump.triage_json import triage_to_dict

        return triage_to_dict(self, include_data_blocks=include_data_blocks)


# --- parsing ----------------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, buf: Buffer, path: Path | None, is_64bit: bool, machine: int | None) -> None:
        self.buf = buf
        self.path = path
        self.is_64bit = is_64bit
        self.size = len(buf)
        self.machine = machine
        self.warnings: list[str] = []
        self.driver_entry_size = ts.DRIVER_ENTRY_SIZE64 if is_64bit else ts.DRIVER_ENTRY_SIZE32
        self.triage_layout, self.triage_offset = (
            (ts.TRIAGE_DUMP64, ts.TRIAGE_HEADER_OFFSET64) if is_64bit else (ts.TRIAGE_DUMP32, ts.TRIAGE_HEADER_OFFSET32)
        )

    def fail(self, section: str, reason: str, offset: int | None = None) -> TriageFormatError:
        return TriageFormatError(self.path, section, reason, offset=offset)

    def need(self, section: str, offset: int, length: int) -> None:
        """Raise unless [offset, offset+length) lies inside the file."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise self.fail(
                section,
                f"needs {length:#x} bytes at {offset:#x}, past the end of the file ({self.size:#x} bytes)",
                offset,
            )

    def copy(self, section: str, offset: int, length: int) -> bytes:
        self.need(section, offset, length)
        return bytes(self.buf[offset : offset + length])

    def parse(self) -> TriageDump:
        hdr_layout = HEADER64 if self.is_64bit else HEADER32
        if self.size < hdr_layout.size:
            raise self.fail(
                "header", f"file is {self.size:#x} bytes, shorter than the {hdr_layout.size:#x}-byte header", 0
            )
        main = hdr_layout.unpack(self.buf, 0, page_fill_absent=True)
        if main["dump_type"] is not None and main["dump_type"] != DumpType.TRIAGE:
            raise self.fail("header", f"DumpType {main['dump_type']:#x} is not a small memory dump (4)", 0)
        mit = main["machine_image_type"]
        if self.machine is None:
            self.machine = mit if mit is not None else (Machine.AMD64 if self.is_64bit else Machine.I386)
        tri_layout, tri_off = self.triage_layout, self.triage_offset
        self.need("triage_header", tri_off, tri_layout.size)
        h = TriageHeader(**tri_layout.unpack(self.buf, tri_off))
        tri = TriageDump(
            path=self.path,
            buffer=self.buf,
            is_64bit=self.is_64bit,
            machine=self.machine,
            file_size=self.size,
            dump_header=main,
            header=h,
            warnings=self.warnings,
        )
        self._check_valid_marker(h, tri)
        self._context_and_exception(h, tri)
        if h.mm_offset:
            tri.mm = parse_mm(self, h.mm_offset)
        if h.unloaded_drivers_offset:
            tri.unloaded_drivers = parse_unloaded(self, h.unloaded_drivers_offset)
        tri.prcb = self._copy_sized(h.prcb_offset, "prcb", h, "SizePrcb")
        tri.process = self._copy_sized(h.process_offset, "process", h, "SizeEProcess")
        tri.thread = self._copy_sized(h.thread_offset, "thread", h, "SizeEThread")
        if h.call_stack_offset and h.size_of_call_stack:
            tri.stack = self.copy("call_stack", h.call_stack_offset, h.size_of_call_stack)
            tri.top_of_stack = h.top_of_stack
        if h.data_page_offset and h.data_page_size:
            tri.data_page = self.copy("data_page", h.data_page_offset, h.data_page_size)
        if h.driver_list_offset and h.driver_count:
            tri.drivers = parse_drivers(self, h)
            tri.broken_driver = self._broken_driver(h, tri.drivers)
        if h.debugger_data_offset and h.debugger_data_size:
            tri.kdbg = parse_kdbg(self, h.debugger_data_offset, h.debugger_data_size, main["kd_debugger_data_block"])
        if h.data_blocks_offset and h.data_blocks_count:
            tri.block_table = parse_data_blocks(self, h.data_blocks_offset, h.data_blocks_count)
        if h.size_of_dump < self.size:
            tri.blob_file_header, tri.blobs = parse_blobs(self, h.size_of_dump)
        self._check_overlaps(h, tri)
        return tri

    def _check_valid_marker(self, h: TriageHeader, tri: TriageDump) -> None:
        if h.valid_offset == 0:
            raise self.fail("valid_marker", "ValidOffset is 0: no TRGD marker", 0)
        self.need("valid_marker", h.valid_offset, 4)
        value = struct.unpack_from("<I", self.buf, h.valid_offset)[0]
        if value != TRIAGE_VALID:
            raise self.fail("valid_marker", f"expected TRGD at ValidOffset, found {value:#010x}", h.valid_offset)
        tri.valid = True
        if h.size_of_dump > self.size:
            self.warnings.append(
                f"SizeOfDump {h.size_of_dump:#x} is larger than the file ({self.size:#x} bytes): file is truncated"
            )
        elif h.size_of_dump != h.valid_offset + 4:
            self.warnings.append(f"SizeOfDump {h.size_of_dump:#x} != ValidOffset + 4 ({h.valid_offset + 4:#x})")

    def _check_overlaps(self, h: TriageHeader, tri: TriageDump) -> None:
        """Sections that overlap each other are reported (each still reads on its own)."""
        spans = []
        for name, off, length in (
            ("mm", h.mm_offset, len(tri.mm.raw) if tri.mm is not None else 0),
            ("prcb", h.prcb_offset, len(tri.prcb or b"")),
            ("process", h.process_offset, len(tri.process or b"")),
            ("thread", h.thread_offset, len(tri.thread or b"")),
            ("call_stack", h.call_stack_offset, h.size_of_call_stack),
            ("driver_list", h.driver_list_offset, h.driver_count * self.driver_entry_size),
            ("string_pool", h.string_pool_offset, h.string_pool_size),
            ("debugger_data", h.debugger_data_offset, h.debugger_data_size),
            ("data_blocks", h.data_blocks_offset, h.data_blocks_count * ts.TRIAGE_DATA_BLOCK.size),
        ):
            if off and length:
                spans.append((off, off + length, name))
        spans.sort()
        for (s1, e1, n1), (s2, _e2, n2) in itertools.pairwise(spans):
            if s2 < e1:
                self.warnings.append(f"sections {n1} [{s1:#x}, {e1:#x}) and {n2} (at {s2:#x}) overlap")
        header_end = self.triage_offset + self.triage_layout.size
        for s, _e, n in spans:
            if s < header_end:
                self.warnings.append(f"section {n} at {s:#x} overlaps the dump headers")

    def _context_and_exception(self, h: TriageHeader, tri: TriageDump) -> None:
        if h.context_offset:
            try:
                lay = context_layout(self.machine)
            except ValueError:
                self.warnings.append(f"context: no CONTEXT layout for machine {self.machine:#x}; not decoded")
            else:
                self.need("context", h.context_offset, lay.size)
                tri.context = parse_context(self.machine, self.buf, h.context_offset)
        if h.exception_offset:
            size = (EXCEPTION_RECORD64 if self.is_64bit else EXCEPTION_RECORD32).size
            self.need("exception", h.exception_offset, size)
            tri.exception = parse_exception(self.is_64bit, self.buf, h.exception_offset)

    def _copy_sized(self, offset: int, section: str, h: TriageHeader, kdbg_size_field: str) -> bytes | None:
        """A PRCB/EPROCESS/ETHREAD copy: its size is the KDBG's Size* field, else the gap to the next section."""
        if not offset:
            return None
        length = self._kdbg_u16(h, kdbg_size_field)
        if not length:
            length = self._gap_after(h, offset)
            if length:
                self.warnings.append(f"{section}: size taken from the gap to the next section ({length:#x})")
        if not length:
            self.warnings.append(f"{section}: size unknown (no KDBG Size field, no following section); not read")
            return None
        return self.copy(section, offset, length)

    def _kdbg_u16(self, h: TriageHeader, name: str) -> int | None:
        off = kd.KDDEBUGGER_DATA64.offset_of(name)
        if not h.debugger_data_offset or h.debugger_data_size < off + 2:
            return None
        self.need("debugger_data", h.debugger_data_offset, h.debugger_data_size)
        return struct.unpack_from("<H", self.buf, h.debugger_data_offset + off)[0]

    def _gap_after(self, h: TriageHeader, offset: int) -> int:
        starts = [getattr(h, f) for f, _ in ts.OFFSET_FIELDS if getattr(h, f) > offset]
        if h.valid_offset > offset:
            starts.append(h.valid_offset)
        return (min(starts) - offset) if starts else 0

    def _broken_driver(self, h: TriageHeader, drivers: list[LoadedDriver]) -> LoadedDriver | None:
        if not h.broken_driver_offset:
            return None
        entry = self.driver_entry_size
        rel = h.broken_driver_offset - h.driver_list_offset
        if rel >= 0 and rel % entry == 0 and rel // entry < len(drivers):
            return drivers[rel // entry]
        self.warnings.append(f"broken_driver: offset {h.broken_driver_offset:#x} is not a driver-list entry")
        return None


# --- copies' addresses and identity -----------------------------------------------------------------------------


def _locate_copies(tri: TriageDump) -> tuple[int | None, int | None, int | None]:
    """(PRCB VA, thread VA, process VA) from KDBG offsets and the data blocks; None where not derivable."""
    k = tri.kdbg
    if tri.prcb is None or k is None:
        return None, None, None
    ps = tri.pointer_size
    prcb_va = _find_prcb(tri, k, ps)
    thread_va = process_va = None
    off_thread = k.get("OffsetPrcbCurrentThread")
    if off_thread and off_thread + ps <= len(tri.prcb):
        thread_va = int.from_bytes(tri.prcb[off_thread : off_thread + ps], "little") or None
    off_proc = k.get("OffsetKThreadApcProcess")
    if tri.thread is not None and off_proc and off_proc + ps <= len(tri.thread):
        process_va = int.from_bytes(tri.thread[off_proc : off_proc + ps], "little") or None
    return prcb_va, thread_va, process_va


def _read_blocks(tri: TriageDump, va: int, size: int) -> bytes:
    """``size`` bytes at ``va`` from the data blocks: a block starting exactly there is used directly (Windows
    stores KiProcessorBlock and each PRCB as blocks of their own), else the sorted index is built and asked."""
    t = tri.block_table
    try:
        i = t.addresses.index(va)
    except ValueError:
        i = -1
    if i >= 0 and t.sizes[i] >= size:
        return bytes(tri.buffer[t.offsets[i] : t.offsets[i] + size])
    return tri._blocks_view.read(va, size)


def _find_prcb(tri: TriageDump, k: KdDebuggerData, ps: int) -> int | None:
    """Which KiProcessorBlock entry is the copied PRCB: by its processor number, confirmed by data-block bytes."""
    array_va = k.get("KiProcessorBlock")
    prcb = tri.prcb
    assert prcb is not None
    n_cpus = tri.dump_header.get("number_processors") or 0
    candidates: list[int] = []
    if array_va and 0 < n_cpus <= 4096:
        try:
            raw = _read_blocks(tri, array_va, n_cpus * ps)
            candidates = list(struct.unpack(f"<{n_cpus}{'Q' if ps == 8 else 'I'}", raw))
        except PageNotPresentError:
            for i in range(n_cpus):  # a partial array: as many entries as are present
                try:
                    candidates.append(int.from_bytes(_read_blocks(tri, array_va + i * ps, ps), "little"))
                except PageNotPresentError:
                    break
    number = tri.processor_number
    probe = min(len(prcb), 0x200)
    if number is not None and number < len(candidates):
        va = candidates[number]
        try:
            if _read_blocks(tri, va, probe) == prcb[:probe]:
                return va
        except PageNotPresentError:
            return va  # the array says so; there is simply no data-block copy to confirm it with
    for va in candidates:  # fall back to comparing bytes
        try:
            if _read_blocks(tri, va, probe) == prcb[:probe]:
                return va
        except PageNotPresentError:
            continue
    return None


def _process_identity(tri: TriageDump) -> tuple[str | None, int | None, int | None]:
    """(image name, pid, tid) from the build's offset table, cross-validated; None for whatever is not sure."""
    k = tri.kdbg
    if tri.process is None or tri.thread is None or k is None:
        return None, None, None
    row = offsets_for(tri.machine, tri.build, k.get("SizeEProcess"), k.get("SizeEThread"))
    if row is None:
        return None, None, None
    ps = tri.pointer_size
    p, t = tri.process, tri.thread
    if row.eprocess_image_file_name + IMAGE_FILE_NAME_LENGTH > len(p) or row.ethread_cid + 2 * ps > len(t):
        return None, None, None
    if row.eprocess_unique_process_id + ps > len(p):
        return None, None, None
    raw_name = p[row.eprocess_image_file_name : row.eprocess_image_file_name + IMAGE_FILE_NAME_LENGTH].split(b"\0")[0]
    name = raw_name.decode("ascii") if raw_name and all(0x20 <= c < 0x7F for c in raw_name) else None
    fmt = "<Q" if ps == 8 else "<I"
    pid_eprocess = struct.unpack_from(fmt, p, row.eprocess_unique_process_id)[0]
    cid_pid, cid_tid = struct.unpack_from(f"<2{fmt[1]}", t, row.ethread_cid)
    if cid_pid != pid_eprocess or cid_pid % 4 or cid_tid % 4:  # client ids are multiples of 4
        return name, None, None
    return name, cid_pid, cid_tid
