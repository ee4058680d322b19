"""TriageDumpBuilder: write a small memory dump (DumpType 4) laid out the way Windows lays it out.

The layout rules come from the Windows-written sample (``../shared/spec/observed-triage-x64.md``):

* DUMP_HEADER32/64 pre-filled with "PAGE"; only the fields we know are written over it. The CONTEXT sits in the
  header's ContextRecord area (0x348 / 0x320) followed by zeros up to the exception record (0xF00 / 0x7D0), whose
  unused ExceptionInformation slots keep the filler.
* TRIAGE_DUMP32/64 right after the header, then the sections back to back, each starting 8-aligned, in the order
  MM info, unloaded drivers, PRCB, EPROCESS, ETHREAD, stack, KDBG, driver list, string pool, data-block table,
  data-block payloads (packed, unaligned).
* Driver entries (0x90 / 0x4C bytes) carry only DllBase, SizeOfImage, CheckSum, TimeDateStamp and the name offset;
  names are DUMP_STRINGs (length in UTF-16 characters, NUL, 8-aligned).
* ValidOffset = payload start + Σ align8(payload size) (what Windows reserves: the sample's 0x8E-byte zero pad is
  exactly that), ``TRGD`` there, SizeOfDump = ValidOffset + 4, then the optional DumpBlob secondary data.
* MiniDumpFields: like the sample, TRIAGE_DUMP_BASIC_INFO (0xFF) as a group when a context is written, plus
  DATAPAGE / DEBUGGER_DATA / DATA_BLOCKS when present; MMINFO is not set (the 19041 sample has the MM section but
  not the bit). Pass ``mini_dump_fields`` to override.
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbgauto.kdump.constants import TRIAGE_VALID, DumpType, Machine, TriageFlag
from dbgauto.kdump.records import LoadedDriver, UnloadedDriver
from dbgauto.kdump.structs import triage as ts
from dbgauto.kdump.structs.context import (
    EXCEPTION_MAXIMUM_PARAMETERS,
    EXCEPTION_RECORD32,
    EXCEPTION_RECORD64,
    CpuContext,
    ExceptionRecord,
    context_layout,
    pack_context,
)
from dbgauto.kdump.structs.header import HEADER32, HEADER64
from dbgauto.util.atomic import atomic_write
from dbgauto.util.layout import PAGE_FILL

if TYPE_CHECKING:
    from dbgauto.kdump.triage import TriageDump

__all__ = ["BlobSpec", "TriageDumpBuilder"]

_CONTEXT_AREA = {True: (0x348, 0xF00), False: (0x320, 0x7D0)}  # ContextRecord start, exception record start
_HEADER_OWN = frozenset({"signature", "valid_dump", "dump_type", "context_record", "exception"})


@dataclass(frozen=True, slots=True)
class BlobSpec:
    """One DumpBlob secondary-data record (bugcheck secondary callback data): GUID tag and opaque bytes."""

    tag: uuid.UUID
    data: bytes
    pre_pad: int = 0
    post_pad: int | None = None  # default: up to the next 8-byte boundary (as in the sample)


def _align8(n: int) -> int:
    return (n + 7) & ~7


def _exception_copy(tri: TriageDump) -> bytes | None:
    """The EXCEPTION_RECORD32/64 bytes exactly as the parsed dump holds them."""
    if tri.exception is None:
        return None
    size = (EXCEPTION_RECORD64 if tri.is_64bit else EXCEPTION_RECORD32).size
    return bytes(tri.buffer[tri.header.exception_offset : tri.header.exception_offset + size])


@dataclass
class TriageDumpBuilder:
    """The parts of a small memory dump; :meth:`build` lays them out, :meth:`write` writes them atomically."""

    machine: int
    header_fields: Mapping[str, Any] = field(default_factory=dict)  # DUMP_HEADER32/64 fields by Layout name
    context: CpuContext | bytes | Mapping[str, int] | None = None
    exception: ExceptionRecord | bytes | None = None
    mm: bytes | Mapping[str, int] | None = None  # raw DUMP_MM_STORAGE or fields; default Version 1, Size
    unloaded_drivers: Sequence[UnloadedDriver] | None = None  # UnloadedDriver records; None = no section
    prcb: bytes | None = None
    process: bytes | None = None
    thread: bytes | None = None
    stack: bytes | None = None
    top_of_stack: int = 0
    drivers: Sequence[LoadedDriver] = ()
    broken_driver_index: int | None = None
    kdbg: bytes | None = None
    data_blocks: Sequence[tuple[int, bytes]] = ()
    data_page: tuple[int, bytes] | None = None
    blobs: Sequence[BlobSpec] | None = None  # None: no secondary data; [] writes just the DumpBlob file header
    blob_build_number: int | None = None  # default 0xF0000000 | build
    is_64bit: bool | None = None  # default: False for x86 / ARM32, True otherwise
    service_pack_build: int = 0
    triage_options: int = 0xFFFFFFFF
    mini_dump_fields: int | None = None
    required_dump_space: int | None = None  # default: the whole file's size
    mm_present: bool = True

    # --- from a parsed dump -------------------------------------------------------------------------------------

    @classmethod
    def from_triage(cls, tri: TriageDump) -> TriageDumpBuilder:
        """Every part of a parsed small dump, ready to be written again."""
        buf = tri.buffer
        h = tri.header
        blocks = [(b.address, bytes(buf[b.offset : b.offset + b.size])) for b in tri.data_blocks]
        blobs = None
        if tri.blob_file_header is not None:
            blobs = [BlobSpec(b.tag, tri.blob_data(b), b.pre_pad, b.post_pad) for b in tri.blobs]
        broken = None
        if tri.broken_driver is not None:
            broken = next(i for i, d in enumerate(tri.drivers) if d is tri.broken_driver)
        return cls(
            machine=tri.machine,
            is_64bit=tri.is_64bit,
            header_fields={k: v for k, v in tri.dump_header.items() if k not in _HEADER_OWN},
            context=tri.context.raw if tri.context is not None else None,
            exception=_exception_copy(tri),
            mm=tri.mm.raw if tri.mm is not None else None,
            mm_present=tri.mm is not None,
            unloaded_drivers=list(tri.unloaded_drivers) if h.unloaded_drivers_offset else None,
            prcb=tri.prcb,
            process=tri.process,
            thread=tri.thread,
            stack=tri.stack,
            top_of_stack=h.top_of_stack,
            drivers=list(tri.drivers),
            broken_driver_index=broken,
            kdbg=tri.kdbg.raw if tri.kdbg is not None else None,
            data_blocks=blocks,
            data_page=(h.data_page_address, tri.data_page) if tri.data_page is not None else None,
            blobs=blobs,
            blob_build_number=tri.blob_file_header.build_number if tri.blob_file_header is not None else None,
            service_pack_build=h.service_pack_build,
            triage_options=h.triage_options,
        )

    # --- output -------------------------------------------------------------------------------------------------

    def write(self, path: os.PathLike[str] | str, *, overwrite: bool = False) -> Path:
        """Write the dump through a temporary file renamed into place."""
        data = self.build()
        with atomic_write(path, overwrite=overwrite) as fh:
            fh.write(data)
        return Path(path)

    def build(self) -> bytes:
        is64 = self.is_64bit if self.is_64bit is not None else self.machine not in (Machine.I386, Machine.ARMNT)
        hdr_lay = HEADER64 if is64 else HEADER32
        tri_lay, tri_off = (
            (ts.TRIAGE_DUMP64, ts.TRIAGE_HEADER_OFFSET64) if is64 else (ts.TRIAGE_DUMP32, ts.TRIAGE_HEADER_OFFSET32)
        )
        t: dict[str, int] = dict.fromkeys(tri_lay.by_name, 0)
        # The body (everything after the triage header) is assembled in `body`, with absolute offsets.
        base = tri_off + tri_lay.size
        body = bytearray()

        def put(data: bytes | bytearray) -> int:
            start = _align8(base + len(body))
            body.extend(b"\0" * (start - base - len(body)))
            body.extend(data)
            return start

        if self.mm_present:
            t["mm_offset"] = put(self._mm_bytes(is64))
        if self.unloaded_drivers is not None:
            t["unloaded_drivers_offset"] = put(self._unloaded_bytes(is64))
        if self.prcb is not None:
            t["prcb_offset"] = put(self.prcb)
        if self.process is not None:
            t["process_offset"] = put(self.process)
        if self.thread is not None:
            t["thread_offset"] = put(self.thread)
        if self.stack is not None:
            t["call_stack_offset"] = put(self.stack)
            t["size_of_call_stack"] = len(self.stack)
            t["top_of_stack"] = self.top_of_stack
        if self.data_page is not None:
            t["data_page_address"] = self.data_page[0]
            t["data_page_offset"] = put(self.data_page[1])
            t["data_page_size"] = len(self.data_page[1])
        if self.kdbg is not None:
            t["debugger_data_offset"] = put(self.kdbg)
            t["debugger_data_size"] = len(self.kdbg)
        if self.drivers:
            self._drivers(is64, t, put, body, base)
        if self.data_blocks:
            n = len(self.data_blocks)
            table_off = _align8(base + len(body))
            payload = table_off + n * ts.TRIAGE_DATA_BLOCK.size
            table = bytearray()
            cur = payload
            for address, data in self.data_blocks:
                table += ts.TRIAGE_DATA_BLOCK.pack({"address": address, "offset": cur, "size": len(data)})
                cur += len(data)
            t["data_blocks_offset"] = put(table)
            t["data_blocks_count"] = n
            for _address, data in self.data_blocks:
                body.extend(data)
            valid = payload + sum(_align8(len(d)) for _a, d in self.data_blocks)
        else:
            valid = _align8(base + len(body))
        body.extend(b"\0" * (valid - base - len(body)))
        body += struct.pack("<I", TRIAGE_VALID)
        size_of_dump = valid + 4
        if size_of_dump > 0xFFFFFFFF:
            raise ValueError(f"small dump would be {size_of_dump:#x} bytes: TRIAGE_DUMP offsets are 32-bit")
        t.update(service_pack_build=self.service_pack_build, triage_options=self.triage_options)
        t.update(size_of_dump=size_of_dump, valid_offset=valid)
        secondary = self._blob_bytes()

        header = hdr_lay.pack({}, fill=PAGE_FILL)
        ctx_start, exc_start = _CONTEXT_AREA[is64]
        if self.context is not None:
            ctx = self._context_bytes()
            header[ctx_start:exc_start] = bytes(exc_start - ctx_start)
            header[ctx_start : ctx_start + len(ctx)] = ctx
            t["context_offset"] = ctx_start
        if self.exception is not None:
            exception = self._exception_bytes(is64)
            header[exc_start : exc_start + len(exception)] = exception
            t["exception_offset"] = exc_start
        fields = {k: v for k, v in self.header_fields.items() if k not in _HEADER_OWN and k in hdr_lay.by_name}
        fields.update(
            signature=b"PAGE",
            valid_dump=b"DU64" if is64 else b"DUMP",
            dump_type=int(DumpType.TRIAGE),
            machine_image_type=int(self.machine),
            mini_dump_fields=self.mini_dump_fields
            if self.mini_dump_fields is not None
            else self.header_fields.get("mini_dump_fields", self._default_fields()),
        )
        total = size_of_dump + len(secondary)
        if self.required_dump_space is not None:
            fields["required_dump_space"] = self.required_dump_space
        elif fields.get("required_dump_space") is None:
            fields["required_dump_space"] = total
        hdr_lay.pack_into(header, 0, fields)
        triage_hdr = tri_lay.pack({k: v for k, v in t.items() if k in tri_lay.by_name})
        return b"".join((bytes(header[:tri_off]), bytes(triage_hdr), bytes(body), secondary))

    # --- pieces -------------------------------------------------------------------------------------------------

    def _default_fields(self) -> int:
        f = 0
        if self.context is not None:
            f |= TriageFlag.BASIC_INFO
        if self.data_page is not None:
            f |= TriageFlag.DATAPAGE
        if self.kdbg is not None:
            f |= TriageFlag.DEBUGGER_DATA
        if self.data_blocks:
            f |= TriageFlag.DATA_BLOCKS
        return int(f)

    def _context_bytes(self) -> bytes:
        c = self.context
        if isinstance(c, CpuContext):
            return c.raw
        if isinstance(c, bytes | bytearray):
            return bytes(c[: context_layout(self.machine).size])
        assert c is not None
        return pack_context(self.machine, c)

    def _exception_bytes(self, is64: bool) -> bytes:
        e = self.exception
        lay = EXCEPTION_RECORD64 if is64 else EXCEPTION_RECORD32
        if isinstance(e, bytes | bytearray):
            return bytes(e[: lay.size]).ljust(lay.size, b"\0")
        assert isinstance(e, ExceptionRecord)
        raw = lay.pack({}, fill=PAGE_FILL)
        head = {
            "exception_code": e.code,
            "exception_flags": e.flags,
            "exception_record": e.record,
            "exception_address": e.address,
            "number_parameters": e.number_parameters,
        }
        lay.pack_into(raw, 0, head)  # the 64-bit record's alignment pad keeps the filler, as Windows leaves it
        step = 8 if is64 else 4
        base = lay.offset_of("exception_information")
        for i, p in enumerate(e.parameters[:EXCEPTION_MAXIMUM_PARAMETERS]):
            struct.pack_into("<Q" if is64 else "<I", raw, base + i * step, p)
        return bytes(raw)

    def _mm_bytes(self, is64: bool) -> bytes:
        lay = ts.DUMP_MM_STORAGE64 if is64 else ts.DUMP_MM_STORAGE32
        if isinstance(self.mm, bytes | bytearray):
            return bytes(self.mm)
        values: dict[str, int] = {"version": 1, "size": lay.size}
        values.update(self.mm or {})
        return bytes(lay.pack(values))

    def _unloaded_bytes(self, is64: bool) -> bytes:
        lay = ts.DUMP_UNLOADED_DRIVERS64 if is64 else ts.DUMP_UNLOADED_DRIVERS32
        items = list(self.unloaded_drivers or ())
        count_size = ts.UNLOADED_COUNT_SIZE64 if is64 else ts.UNLOADED_COUNT_SIZE32
        out = bytearray(len(items).to_bytes(count_size, "little"))
        for u in items:
            name = u.name.encode("utf-16-le", "surrogatepass")[: 2 * ts.MAX_UNLOADED_NAME_CHARS]
            length = u.name_length if getattr(u, "name_length", None) is not None else len(name)
            out += lay.pack(
                {
                    "name_length": length,
                    "name_maximum_length": length,
                    "driver_name": name.ljust(24, b"\0"),
                    "start_address": u.start,
                    "end_address": u.end,
                }
            )
        return bytes(out)

    def _drivers(self, is64: bool, t: dict[str, int], put: Any, body: bytearray, base: int) -> None:
        lay = ts.DUMP_DRIVER_ENTRY64 if is64 else ts.DUMP_DRIVER_ENTRY32
        n = len(self.drivers)
        list_off = _align8(base + len(body))
        pool_off = _align8(list_off + n * lay.size)
        pool = bytearray()
        entries = bytearray()
        for d in self.drivers:
            name = d.name or ""
            entries += lay.pack(
                {
                    "driver_name_offset": pool_off + len(pool),
                    "dll_base": d.base,
                    "size_of_image": d.size,
                    "checksum": d.checksum,
                    "time_date_stamp": d.timestamp,
                }
            )
            units = name.encode("utf-16-le", "surrogatepass")  # Length counts UTF-16 units, not Python characters
            s = struct.pack("<I", len(units) // 2) + units + b"\0\0"
            pool += s + bytes(_align8(len(s)) - len(s))
        t["driver_list_offset"] = put(entries)
        t["driver_count"] = n
        assert put(pool) == pool_off
        t["string_pool_offset"] = pool_off
        t["string_pool_size"] = len(pool)
        if self.broken_driver_index is not None:
            t["broken_driver_offset"] = list_off + self.broken_driver_index * lay.size

    def _blob_bytes(self) -> bytes:
        if self.blobs is None:
            return b""
        build = self.blob_build_number
        if build is None:
            build = 0xF0000000 | (self.header_fields.get("minor_version") or 0)
        out = bytearray(
            ts.DUMP_BLOB_FILE_HEADER.pack({"signature": b"DumpBlob", "header_size": 0x10, "build_number": build})
        )
        for b in self.blobs:
            post = b.post_pad if b.post_pad is not None else (-len(b.data)) % 8
            out += ts.DUMP_BLOB_HEADER.pack(
                {
                    "header_size": ts.DUMP_BLOB_HEADER.size,
                    "tag": b.tag.bytes_le,
                    "data_size": len(b.data),
                    "pre_pad": b.pre_pad,
                    "post_pad": post,
                }
            )
            out += bytes(b.pre_pad) + b.data + bytes(post)
        return bytes(out)
