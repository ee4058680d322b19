"""The small memory dump (triage, DumpType 4) model: every section of TRIAGE_DUMP32/64, plus a VA view.

The parser is :mod:`dbgauto.kdump.triage_parse`; what needs kernel knowledge (which PRCB the copy is, process
identity, the stack) is the kernel layer's (:mod:`dbgauto.kernel.smalldump`).

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

import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from dbgauto.kdump.records import LoadedDriver, UnloadedDriver
from dbgauto.kdump.structs.context import CpuContext, ExceptionRecord
from dbgauto.kdump.triage_sections import (
    EMPTY_BLOCKS,
    BlockTable,
    DataBlock,
    DumpBlob,
    DumpBlobFileHeader,
    KdDebuggerData,
    MmInfo,
)
from dbgauto.kdump.triage_view import Region, VirtualView
from dbgauto.util.layout import Buffer

log = logging.getLogger(__name__)

__all__ = [
    "DataBlock",
    "DumpBlob",
    "DumpBlobFileHeader",
    "KdDebuggerData",
    "LoadedDriver",
    "MmInfo",
    "TriageDump",
    "TriageHeader",
    "UnloadedDriver",
]


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
        from dbgauto.kdump.triage_parse import TriageParser

        return TriageParser(buf, Path(path) if path is not None else None, is_64bit, machine).parse()

    # --- derived facts ------------------------------------------------------------------------------------------

    @property
    def pointer_size(self) -> int:
        return 8 if self.is_64bit else 4

    @property
    def build(self) -> int | None:
        return self.dump_header.get("minor_version")

    @cached_property
    def memory(self) -> VirtualView:
        """Target VAs served from the copies whose address the file itself records (stack, KDBG, data page) and
        the data blocks; the PRCB/thread/process copies are added by the kernel layer, which locates them."""
        return self.blocks_view.with_copies(self.located_copies())

    def located_copies(
        self, *, prcb: int | None = None, thread: int | None = None, process: int | None = None
    ) -> list[Region]:
        """The single copies as regions, with the PRCB/thread/process addresses when the caller knows them."""
        h = self.header
        copies: list[Region] = []
        if self.stack is not None and self.top_of_stack is not None:
            copies.append(Region(self.top_of_stack, h.call_stack_offset, len(self.stack), "stack"))
        if self.prcb is not None and prcb is not None:
            copies.append(Region(prcb, h.prcb_offset, len(self.prcb), "prcb"))
        if self.thread is not None and thread is not None:
            copies.append(Region(thread, h.thread_offset, len(self.thread), "thread"))
        if self.process is not None and process is not None:
            copies.append(Region(process, h.process_offset, len(self.process), "process"))
        if self.kdbg is not None and self.kdbg.address is not None:
            copies.append(Region(self.kdbg.address, h.debugger_data_offset, len(self.kdbg.raw), "kdbg"))
        if self.data_page is not None:
            copies.append(Region(h.data_page_address, h.data_page_offset, len(self.data_page), "data_page"))
        return copies

    @cached_property
    def blocks_view(self) -> VirtualView:
        """The data blocks alone (used to locate the PRCB before the full view exists)."""
        mask = 0xFFFFFFFFFFFFFFFF if self.is_64bit else 0xFFFFFFFF
        t = self.block_table
        cols = (t.addresses, t.offsets, t.sizes)
        return VirtualView(self.buffer, copies=(), columns=cols, address_mask=mask, path=self.path)

    @cached_property
    def data_blocks(self) -> list[DataBlock]:
        """The data-block table as rows, in file order."""
        return self.block_table.rows()

    def blob_data(self, blob: DumpBlob) -> bytes:
        return bytes(self.buffer[blob.data_offset : blob.data_offset + blob.data_size])

    def to_dict(self, *, include_data_blocks: bool = False, kernel: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything, JSON-ready. Addresses, offsets, sizes, codes, timestamps: "0x..." strings; counts: ints.

        The data-block table is summarised (count, total bytes, first and last rows); the full list of
        [address, offset, size] rows (60% of the JSON on a typical dump) only with ``include_data_blocks``."""
        from dbgauto.kdump.triage_json import triage_to_dict

        return triage_to_dict(self, include_data_blocks=include_data_blocks, kernel=kernel)
