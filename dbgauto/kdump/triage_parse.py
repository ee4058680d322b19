"""Parse a small memory dump (DumpType 4) into a :class:`~dbgauto.kdump.triage.TriageDump`.

Why it is strict about bounds: small dumps arrive from customers and crash folders, often truncated or damaged.
Every offset and count is checked against the file size before anything is read or allocated (see the model's
module docstring for what raises and what becomes a warning). Section parsers live in
:mod:`dbgauto.kdump.triage_sections`.
"""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

from dbgauto.errors import TriageFormatError
from dbgauto.kdump.constants import TRIAGE_VALID, DumpType, Machine
from dbgauto.kdump.records import LoadedDriver
from dbgauto.kdump.structs import kd
from dbgauto.kdump.structs import triage as ts
from dbgauto.kdump.structs.context import (
    EXCEPTION_RECORD32,
    EXCEPTION_RECORD64,
    context_layout,
    parse_context,
    parse_exception,
)
from dbgauto.kdump.structs.header import HEADER32, HEADER64
from dbgauto.kdump.triage import TriageDump, TriageHeader
from dbgauto.kdump.triage_sections import (
    parse_blobs,
    parse_data_blocks,
    parse_drivers,
    parse_kdbg,
    parse_mm,
    parse_unloaded,
)
from dbgauto.util.layout import Buffer

__all__ = ["TriageParser"]


class TriageParser:
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
