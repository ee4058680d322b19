"""The small-dump sections as values, and the bounded parsers that produce them.

Each parser receives the parser (``TriageParser``: (``buf``, ``size``, ``is_64bit``, ``need()``, ``copy()``, ``fail()``,
``warnings``). A count or offset that needs bytes the file does not have raises before anything is allocated;
damage inside a bounded section becomes a warning.
"""

from __future__ import annotations

import codecs
import functools
import operator
import struct
import sys
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NamedTuple

from dbgauto.kdump.constants import DUMP_BLOB_SIGNATURE
from dbgauto.kdump.records import LoadedDriver, UnloadedDriver
from dbgauto.kdump.structs import kd
from dbgauto.kdump.structs import triage as ts
from dbgauto.util.frozen import fast_init
from dbgauto.util.layout import Layout
from dbgauto.util.memo import remember

if TYPE_CHECKING:
    from dbgauto.kdump.triage import TriageHeader
    from dbgauto.kdump.triage_parse import TriageParser


class DataBlock(NamedTuple):
    """``size`` bytes of target VA ``address`` at file offset ``offset`` (TRIAGE_DATA_BLOCK)."""

    address: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class MmInfo:
    """DUMP_MM_STORAGE32/64: memory-manager counters at crash time (Version 1, Size 0x50 on Win10 x64)."""

    fields: dict[str, int]
    raw: bytes = field(repr=False)

    @property
    def version(self) -> int:
        return self.fields["version"]

    @property
    def size(self) -> int:
        return self.fields["size"]


@dataclass(frozen=True, slots=True)
class KdDebuggerData:
    """The decoded KDDEBUGGER_DATA64 copy; ``fields`` holds only what lies within Header.Size."""

    address: int | None  # header KdDebuggerDataBlock (where it lives in the target)
    raw: bytes = field(repr=False)
    fields: dict[str, int] = field(repr=False)

    def get(self, name: str) -> int | None:
        return self.fields.get(name)

    @property
    def owner_tag_ok(self) -> bool:
        return self.fields.get("OwnerTag") == kd.KDBG_OWNER_TAG_VALUE

    @property
    def size(self) -> int | None:
        return self.fields.get("Size")

    @property
    def kern_base(self) -> int | None:
        return self.fields.get("KernBase")

    @property
    def ps_loaded_module_list(self) -> int | None:
        return self.fields.get("PsLoadedModuleList")

    @property
    def ki_processor_block(self) -> int | None:
        return self.fields.get("KiProcessorBlock")


@dataclass(frozen=True, slots=True)
class DumpBlobFileHeader:
    offset: int
    signature: bytes
    header_size: int
    build_number: int


@fast_init
@dataclass(frozen=True, slots=True)
class DumpBlob:
    """One secondary-data record after SizeOfDump; the data is kept opaque (read it with ``blob_data``)."""

    offset: int
    header_size: int
    tag: uuid.UUID
    data_size: int
    pre_pad: int
    post_pad: int

    @property
    def data_offset(self) -> int:
        return self.offset + self.header_size + self.pre_pad

    @property
    def end(self) -> int:
        return self.data_offset + self.data_size + self.post_pad


def _selective_struct(lay: Layout) -> struct.Struct:
    """A struct reading only ``lay``'s declared fields, skipping the rest (for iter_unpack over arrays)."""
    fmt, pos = ["<"], 0
    for f in lay.fields:
        if f.offset > pos:
            fmt.append(f"{f.offset - pos}x")
        fmt.append(f.code)
        pos = f.offset + f.size
    if pos < lay.size:
        fmt.append(f"{lay.size - pos}x")
    return struct.Struct("".join(fmt))


_ENTRY64 = _selective_struct(ts.DUMP_DRIVER_ENTRY64)
_ENTRY32 = _selective_struct(ts.DUMP_DRIVER_ENTRY32)
_BLOCK = _selective_struct(ts.TRIAGE_DATA_BLOCK)  # <QII
_new_block = functools.partial(tuple.__new__, DataBlock)  # NamedTuple without the per-call _make overhead
_U32 = struct.Struct("<I")
_BLOB_HEADER = _selective_struct(ts.DUMP_BLOB_HEADER)


def parse_mm(p: TriageParser, offset: int) -> MmInfo:
    lay = ts.DUMP_MM_STORAGE64 if p.is_64bit else ts.DUMP_MM_STORAGE32
    raw = p.copy("mm", offset, lay.size)
    fields = lay.unpack(raw)
    if fields["size"] not in (0, lay.size):
        p.warnings.append(f"mm: Size field {fields['size']:#x} differs from {lay.size:#x}")
    return MmInfo(fields, raw)


def parse_unloaded(p: TriageParser, offset: int) -> list[UnloadedDriver]:
    count_size = ts.UNLOADED_COUNT_SIZE64 if p.is_64bit else ts.UNLOADED_COUNT_SIZE32
    lay = ts.DUMP_UNLOADED_DRIVERS64 if p.is_64bit else ts.DUMP_UNLOADED_DRIVERS32
    p.need("unloaded_drivers", offset, count_size)
    count = int.from_bytes(p.buf[offset : offset + count_size], "little")
    if count > (p.size - offset - count_size) // lay.size:
        raise p.fail("unloaded_drivers", f"count {count} needs more bytes than the file has", offset)
    out = []
    for i in range(count):
        v = lay.unpack(p.buf, offset + count_size + i * lay.size)
        n = min(v["name_length"], 2 * ts.MAX_UNLOADED_NAME_CHARS) & ~1
        name = v["driver_name"][:n].decode("utf-16-le", "replace").split("\0", 1)[0]
        out.append(UnloadedDriver(name, v["start_address"], v["end_address"], v["name_length"]))
    return out


def parse_drivers(p: TriageParser, h: TriageHeader) -> list[LoadedDriver]:
    entry, st = (ts.DRIVER_ENTRY_SIZE64, _ENTRY64) if p.is_64bit else (ts.DRIVER_ENTRY_SIZE32, _ENTRY32)
    if h.driver_count > (p.size - h.driver_list_offset) // entry:
        raise p.fail(
            "driver_list",
            f"DriverCount {h.driver_count} x {entry:#x} bytes runs past the end of the file ({p.size:#x})",
            h.driver_list_offset,
        )
    p.need("driver_list", h.driver_list_offset, h.driver_count * entry)
    pool_start, pool_end = h.string_pool_offset, h.string_pool_offset + h.string_pool_size
    if h.string_pool_offset:
        p.need("string_pool", pool_start, h.string_pool_size)
    table = memoryview(p.buf)[h.driver_list_offset : h.driver_list_offset + h.driver_count * entry]
    # One copy of the pool (bounded by the file, checked above): names are read relative to it, never outside.
    pool = bytes(p.buf[pool_start:pool_end])
    names = _pool_names(pool_start, pool)
    drivers = []
    for name_off, base, size, checksum, stamp in st.iter_unpack(table):
        hit = names.get(name_off)
        if hit is None:
            hit = _name_at(pool, pool_start, name_off)
            if len(names) < _POOL_KEPT_NAMES:  # a hostile list of a million offsets is read, not kept
                names[name_off] = hit
        if hit[1] is not None:
            p.warnings.append(hit[1])
        drivers.append(LoadedDriver(hit[0], base, size, stamp, checksum))
    return drivers


# The names read from each string pool this process has seen, by the pool's bytes and where it starts: every
# boot of a machine loads its drivers at new bases (KASLR) but lists the same names in the same pool, so a
# fleet's dumps decode each name once. Only pools up to 1 MiB are kept (a real one holds ~20 KB).
_POOLS_LIMIT: Final = 32
_POOL_KEPT_BYTES: Final = 1 << 20
_POOL_KEPT_NAMES: Final = 4096
_pools: dict[tuple[int, bytes], dict[int, tuple[str | None, str | None]]] = {}


def _pool_names(pool_start: int, pool: bytes) -> dict[int, tuple[str | None, str | None]]:
    """The memo of one string pool: name offset -> (name or None, warning or None), filled as names are read."""
    if len(pool) > _POOL_KEPT_BYTES:
        return {}
    key = (pool_start, pool)
    names = _pools.get(key)
    return names if names is not None else remember(_pools, key, {}, _POOLS_LIMIT)


def _name_at(pool: bytes, pool_start: int, name_off: int) -> tuple[str | None, str | None]:
    """The counted UTF-16 name at file offset ``name_off`` (inside ``pool``, which starts at ``pool_start``)."""
    rel, size = name_off - pool_start, len(pool)
    if not (rel >= 0 and rel + 4 <= size):
        return None, f"string_pool: name offset {name_off:#x} is outside the string pool"
    end = rel + 4 + 2 * _U32.unpack_from(pool, rel)[0]
    if end > size:
        return None, f"string_pool: string at {name_off:#x} runs past the pool end {pool_start + size:#x}"
    name = codecs.utf_16_le_decode(pool[rel + 4 : end], "replace")[0]
    if pool[end : end + 2] != b"\0\0":
        return name, f"string_pool: string at {name_off:#x} has no NUL terminator"
    return name, None


def parse_kdbg(p: TriageParser, offset: int, size: int, address: int | None) -> KdDebuggerData:
    raw = p.copy("debugger_data", offset, size)
    fields = kd.decode_kdbg_fields(raw, size=size)
    k = KdDebuggerData(address, raw, fields)
    if not fields:
        p.warnings.append(f"debugger_data: {size:#x} bytes, too short for a KDDEBUGGER_DATA64 header")
    elif "OwnerTag" not in fields or "Size" not in fields:  # the header's own Size cuts into the header
        p.warnings.append("debugger_data: the KDBG header's Size field is smaller than the header; block unusable")
    elif not k.owner_tag_ok:
        p.warnings.append(f"debugger_data: OwnerTag is {fields['OwnerTag']:#010x}, not 'KDBG' (encoded or damaged)")
    elif fields["Size"] > size:
        p.warnings.append(f"debugger_data: KDBG Size {fields['Size']:#x} > DebuggerDataSize {size:#x}; fields cut")
    return k


@dataclass(frozen=True, slots=True)
class BlockTable:
    """The TRIAGE_DATA_BLOCK table as three columns (cheap to build and to index; rows made on demand)."""

    addresses: list[int]
    offsets: list[int]
    sizes: list[int]
    _first: dict[int, int] | None = field(default=None, repr=False, compare=False)  # first_at's index

    def __len__(self) -> int:
        return len(self.addresses)

    def rows(self) -> list[DataBlock]:
        return list(map(_new_block, zip(self.addresses, self.offsets, self.sizes, strict=True)))

    def first_at(self, address: int) -> int | None:
        """The index of the first block starting exactly at ``address`` (None: none does). The index is made on
        the first call, in C (reversed, so the first of equal starts wins): a dump asks about ten times."""
        index = self._first
        if index is None:
            n = len(self.addresses)
            index = dict(zip(reversed(self.addresses), range(n - 1, -1, -1), strict=True))
            object.__setattr__(self, "_first", index)
        return index.get(address)

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)


EMPTY_BLOCKS: Final = BlockTable([], [], [])


def _columns(table: memoryview, count: int) -> tuple[list[int], list[int], list[int]]:
    """Address/offset/size columns of ``count`` 16-byte rows, sliced in C (little-endian hosts)."""
    if sys.byteorder == "little":
        raw = table.cast("B")
        q = raw.cast("Q")
        i = raw.cast("I")
        return q[0::2].tolist(), i[2::4].tolist(), i[3::4].tolist()
    rows = list(_BLOCK.iter_unpack(table))
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def parse_data_blocks(p: TriageParser, offset: int, count: int) -> BlockTable:
    if count > (p.size - offset) // _BLOCK.size:
        raise p.fail("data_blocks", f"DataBlocksCount {count} needs more bytes than the file has", offset)
    table = memoryview(bytes(p.buf[offset : offset + count * _BLOCK.size]))
    addresses, offsets, sizes = _columns(table, count)
    limit = p.size
    # max(offsets) + max(sizes) within the file proves every block is; only otherwise is each one checked
    if count and max(offsets) + max(sizes) > limit and max(map(operator.add, offsets, sizes)) > limit:
        keep = [j for j in range(count) if offsets[j] + sizes[j] <= limit]
        first_bad = next(j for j in range(count) if offsets[j] + sizes[j] > limit)
        p.warnings.append(
            f"data_blocks: {count - len(keep)} block(s) point past the end of the file (first: "
            f"{addresses[first_bad]:#x} at {offsets[first_bad]:#x}); dropped"
        )
        addresses = [addresses[j] for j in keep]
        offsets = [offsets[j] for j in keep]
        sizes = [sizes[j] for j in keep]
    return BlockTable(addresses, offsets, sizes)


@functools.lru_cache(maxsize=256)
def _blob_tag(raw: bytes) -> uuid.UUID:
    """The tag GUID (UUIDs are immutable, and the same few tags recur in every dump: built once each)."""
    return uuid.UUID(bytes_le=raw)


def parse_blobs(p: TriageParser, start: int) -> tuple[DumpBlobFileHeader | None, list[DumpBlob]]:
    """The DumpBlob chain Windows appends after SizeOfDump; trailing bytes of another kind are only reported."""
    if start + ts.DUMP_BLOB_FILE_HEADER.size > p.size:
        p.warnings.append(f"secondary data: {p.size - start:#x} trailing bytes after SizeOfDump, not a DumpBlob")
        return None, []
    fh = ts.DUMP_BLOB_FILE_HEADER.unpack(p.buf, start)
    if fh["signature"] != DUMP_BLOB_SIGNATURE:
        p.warnings.append(f"secondary data at {start:#x}: signature {fh['signature']!r}, not DumpBlob")
        return None, []
    header = DumpBlobFileHeader(start, fh["signature"], fh["header_size"], fh["build_number"])
    pos = start + max(fh["header_size"], ts.DUMP_BLOB_FILE_HEADER.size)
    blobs: list[DumpBlob] = []
    while pos < p.size:
        if pos + ts.DUMP_BLOB_HEADER.size > p.size:
            p.warnings.append(f"secondary data: {p.size - pos:#x} bytes at {pos:#x} too short for a blob header")
            break
        header_size, tag, data_size, pre_pad, post_pad = _BLOB_HEADER.unpack_from(p.buf, pos)
        blob = DumpBlob(pos, header_size, _blob_tag(tag), data_size, pre_pad, post_pad)
        if blob.header_size < ts.DUMP_BLOB_HEADER.size or blob.end > p.size:
            p.warnings.append(f"secondary data: blob at {pos:#x} is damaged or runs past the end of the file")
            break
        blobs.append(blob)
        pos = blob.end
    return header, blobs
