"""TriageDump → JSON-ready dict (what ``dbgauto info --json`` prints for small dumps).

Convention (same as ``../shared/groundtruth``): addresses, file offsets, sizes, codes, flags, checksums and
timestamps are lower-case hex strings ("0x1000007e"); counts, pids, tids and processor numbers are ints; absent
values are None. Data blocks are [address, offset, size] triples of hex strings; the full list only on request
(``include_data_blocks``), otherwise count, total bytes, first and last row.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dbgauto.kdump.header import filetime_to_datetime
from dbgauto.util.codec import hex_or_none as _h
from dbgauto.util.codec import iso_z, to_json

if TYPE_CHECKING:
    from dbgauto.kdump.triage import TriageDump

_COUNT_FIELDS = frozenset({"driver_count", "data_blocks_count", "number_processors", "minor_version", "dump_type"})


def _hex3(a: int, o: int, s: int) -> list[str]:
    return [hex(a), hex(o), hex(s)]


@functools.lru_cache(maxsize=256)
def _tag_text(tag: uuid.UUID) -> str:
    """str() of a DumpBlob tag (the same few tags recur in every dump)."""
    return str(tag)


def filetime_to_iso(raw: int | None) -> str | None:
    """FILETIME (100 ns since 1601, UTC) → ISO 8601 with microseconds and "Z"; None when absent or silly."""
    t = filetime_to_datetime(raw)
    return iso_z(t)


_SKIP_HEADER = frozenset(
    {"context_record", "exception", "physical_memory_block", "signature", "valid_dump", "unused1", "unused2", "spare3"}
)


def _main_header(tri: TriageDump) -> dict[str, Any]:
    """DUMP_HEADER fields (filler → None); the context and exception are reported decoded, elsewhere."""
    out: dict[str, Any] = {}
    for k, v in tri.dump_header.items():
        if k in _SKIP_HEADER:
            continue
        if isinstance(v, bytes):  # VersionUser, Comment: NUL-terminated ANSI text
            out[k] = v.split(b"\0", 1)[0].decode("latin-1")
        elif isinstance(v, tuple):
            out[k] = [_h(x) for x in v]
        elif isinstance(v, int) and k not in _COUNT_FIELDS:
            out[k] = hex(v)
        else:
            out[k] = v
    out["system_time_utc"] = filetime_to_iso(tri.dump_header.get("system_time"))
    up = tri.dump_header.get("system_up_time")
    out["system_up_time_seconds"] = None if up is None else up / 1e7
    return out


def triage_to_dict(
    tri: TriageDump, *, include_data_blocks: bool = False, kernel: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``kernel``: what the kernel layer established from the copies (``prcb_address``, ``thread_address``,
    ``process_address``, ``process_name``, ``pid``, ``tid``, ``stack_scan`` hits); absent keys read null/empty."""
    kern = kernel or {}
    h = tri.header
    ctx = tri.context
    exc = tri.exception
    k = tri.kdbg
    table = tri.block_table
    d: dict[str, Any] = {
        "path": str(tri.path) if tri.path is not None else None,
        "file_size": tri.file_size,
        "is_64bit": tri.is_64bit,
        "machine": _h(tri.machine),
        "dump_header": _main_header(tri),
        "triage_header": {
            f.name: (getattr(h, f.name) if f.name in _COUNT_FIELDS else _h(getattr(h, f.name)))
            for f in dataclasses.fields(h)
        },
        "valid_marker": tri.valid,
        "context": None if ctx is None else ctx.to_dict(),
        "exception": None if exc is None else to_json(exc, omit_absent=False),
        "mm": None if tri.mm is None else {f: _h(v) for f, v in tri.mm.fields.items()},
        "unloaded_drivers": [{"name": u.name, "start": _h(u.start), "end": _h(u.end)} for u in tri.unloaded_drivers],
        "drivers": [
            {
                "name": dr.name,
                "base": hex(dr.base),
                "size": hex(dr.size),
                "timestamp": hex(dr.timestamp),
                "checksum": hex(dr.checksum),
            }
            for dr in tri.drivers
        ],
        "broken_driver": None if tri.broken_driver is None else tri.broken_driver.name,
        "prcb": _copy(tri.prcb, tri.header.prcb_offset, kern.get("prcb_address")),
        "process": _copy(tri.process, tri.header.process_offset, kern.get("process_address")),
        "thread": _copy(tri.thread, tri.header.thread_offset, kern.get("thread_address")),
        "stack": None
        if tri.stack is None
        else {"top_of_stack": _h(tri.top_of_stack), "size": _h(len(tri.stack)), "offset": _h(h.call_stack_offset)},
        "process_name": kern.get("process_name"),
        "pid": kern.get("pid"),
        "tid": kern.get("tid"),
        "kdbg": None
        if k is None
        else {
            "address": _h(k.address),
            "owner_tag_ok": k.owner_tag_ok,
            "fields": {n: hex(v) for n, v in k.fields.items()},
        },
        "data_blocks": {
            "count": len(table),
            "total_bytes": table.total_bytes,
            "first": _hex3(table.addresses[0], table.offsets[0], table.sizes[0]) if len(table) else None,
            "last": _hex3(table.addresses[-1], table.offsets[-1], table.sizes[-1]) if len(table) else None,
            "blocks": list(map(_hex3, table.addresses, table.offsets, table.sizes)) if include_data_blocks else None,
        },
        "blob_file_header": None
        if tri.blob_file_header is None
        else {"offset": _h(tri.blob_file_header.offset), "build_number": _h(tri.blob_file_header.build_number)},
        "blobs": [
            {
                "offset": _h(b.offset),
                "tag": _tag_text(b.tag),
                "data_size": _h(b.data_size),
                "pre_pad": b.pre_pad,
                "post_pad": b.post_pad,
            }
            for b in tri.blobs
        ],
        "stack_scan": [
            {"address": hex(s.address), "value": hex(s.value), "module": s.module, "offset": hex(s.offset)}
            for s in kern.get("stack_scan", ())
        ],
        "warnings": list(tri.warnings),
    }
    return d


def _copy(data: bytes | None, offset: int, address: int | None) -> dict[str, Any] | None:
    if data is None:
        return None
    return {"offset": f"{offset:#x}", "size": f"{len(data):#x}", "address": _h(address)}
