"""DUMP_HEADER64 (0x2000) and DUMP_HEADER32 (0x1000) bytes, with offsets written out from dump-format.md §3-4.

The header starts as "PAGE" dwords (what Windows does) and only the fields given are written, so a field
left as None stays filler and a reader must report it absent.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from .context import amd64_context, exception_record32, exception_record64, x86_context

__all__ = [
    "HEADER32_SIZE",
    "HEADER64_SIZE",
    "MAX_RUNS32",
    "MAX_RUNS64",
    "ExceptionFields",
    "HeaderFields",
    "build_header32",
    "build_header64",
    "filetime",
]

HEADER64_SIZE: Final = 0x2000
HEADER32_SIZE: Final = 0x1000
MAX_RUNS64: Final = 43  # 0x88 + 0x10 + 43 * 0x10 = 0x348, where ContextRecord starts
MAX_RUNS32: Final = 86  # (700 - 8) // 8
FILLER: Final = b"PAGE"
_EPOCH_1601: Final = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)

Run = tuple[int, int]


def filetime(when: dt.datetime) -> int:
    """A timezone-aware datetime as FILETIME (100 ns since 1601-01-01 UTC)."""
    if when.tzinfo is None:
        raise ValueError("system_time must be timezone-aware")
    delta = when - _EPOCH_1601
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


@dataclass(frozen=True, slots=True)
class ExceptionFields:
    """EXCEPTION_RECORD contents; ``address=None`` means "the context's instruction pointer"."""

    code: int = 0x80000003
    flags: int = 0
    record: int = 0
    address: int | None = None
    parameters: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class HeaderFields:
    """Every header field a synthetic dump can set; the defaults make a plausible Windows 10 / 7 crash.

    ``None`` means: the writer's value for fields marked "auto" (directory_table_base from the address
    space, machine_image_type and pae_enabled from the arch, dump_type, required_dump_space = final file
    size, physical_memory_runs = the RAM runs), the per-bitness default for fields marked "default", and
    the "PAGE" filler (field absent) for all others. ``leave_filler=("pfn_database", ...)`` forces filler
    for any field, auto or default. ``context`` is raw CONTEXT bytes or a register dict (built into an AMD64 or
    x86 CONTEXT); ``exception`` raw EXCEPTION_RECORD bytes or ExceptionFields.
    """

    major_version: int | None = 0xF
    minor_version: int | None = None  # default: 19041 (64-bit) / 7601 (32-bit)
    directory_table_base: int | None = None  # auto
    pfn_database: int | None = None  # default: a plausible kernel VA per bitness
    ps_loaded_module_list: int | None = None  # default: plausible VA
    ps_active_process_head: int | None = None  # default: plausible VA
    machine_image_type: int | None = None  # auto: 0x8664 / 0x14C
    number_processors: int | None = 4
    bugcheck_code: int | None = 0xD1  # DRIVER_IRQL_NOT_LESS_OR_EQUAL
    bugcheck_parameters: tuple[int, int, int, int] | None = None  # default: plausible D1 parameters
    version_user: bytes | None = b""  # zero-filled CHAR[32]
    pae_enabled: bool | None = None  # auto (32-bit only)
    kd_secondary_version: int | None = None
    kd_debugger_data_block: int | None = None  # default: plausible VA
    physical_memory_runs: Sequence[Run] | None = None  # auto: RAM runs (type 1: the stored runs)
    physical_memory_pages: int | None = None  # auto: sum of the runs' page counts
    context: bytes | Mapping[str, int] | None = field(default_factory=dict)  # {} = default registers
    exception: bytes | ExceptionFields | None = ExceptionFields()
    comment: str | bytes | None = None
    attributes: int | None = None
    boot_id: int | None = None
    dump_type: int | None = None  # auto
    mini_dump_fields: int | None = None
    secondary_data_state: int | None = None
    product_type: int | None = 1  # NtProductWinNt
    suite_mask: int | None = 0x110  # VER_SUITE_SINGLEUSERTS | VER_SUITE_TERMINAL
    writer_status: int | None = None
    required_dump_space: int | None = None  # auto: final file size
    system_time: dt.datetime | int | None = dt.datetime(2026, 1, 15, 9, 30, 12, tzinfo=dt.UTC)
    system_uptime: int | None = 36_000_000_000  # 100 ns units: 1 hour
    leave_filler: tuple[str, ...] = ()


_DEFAULTS64: Final = {
    "minor_version": 19041,
    "pfn_database": 0xFFFFC30000000000,
    "ps_loaded_module_list": 0xFFFFF8035B22A2D0,
    "ps_active_process_head": 0xFFFFF8035B21E3C0,
    "kd_debugger_data_block": 0xFFFFF8035AE00B20,
    "bugcheck_parameters": (0xFFFFB20F6C3E1000, 0x2, 0x0, 0xFFFFF80368A1123A),
}
_DEFAULTS32: Final = {
    "minor_version": 7601,
    "pfn_database": 0x84000000,
    "ps_loaded_module_list": 0x82F7E850,
    "ps_active_process_head": 0x82F76F18,
    "kd_debugger_data_block": 0x82F6EC28,
    "bugcheck_parameters": (0x89A3E000, 0x2, 0x0, 0x8FC3A11A),
}


def _value(fields: HeaderFields, name: str, auto: object, defaults: Mapping[str, object]) -> object:
    if name in fields.leave_filler:
        return None
    value = getattr(fields, name)
    if value is None:
        value = auto if auto is not None else defaults.get(name)
    return value


def _comment_bytes(comment: str | bytes) -> bytes:
    raw = comment.encode("ascii") if isinstance(comment, str) else comment
    if len(raw) > 127:
        raise ValueError("comment longer than 127 bytes")
    return raw.ljust(128, b"\0")


def _runs_block(runs: Sequence[Run], pages: int | None, wide: bool) -> bytes:
    count = sum(c for _, c in runs) if pages is None else pages
    if wide:
        if len(runs) > MAX_RUNS64:
            raise ValueError(f"{len(runs)} runs do not fit in a 64-bit header (max {MAX_RUNS64})")
        return struct.pack("<IIQ", len(runs), 0, count) + b"".join(struct.pack("<QQ", b, c) for b, c in runs)
    if len(runs) > MAX_RUNS32:
        raise ValueError(f"{len(runs)} runs do not fit in a 32-bit header (max {MAX_RUNS32})")
    return struct.pack("<II", len(runs), count) + b"".join(struct.pack("<II", b, c) for b, c in runs)


class _Builder:
    """Writes field values at fixed offsets into a PAGE-filled buffer, per bitness."""

    def __init__(self, fields: HeaderFields, size: int, defaults: Mapping[str, object], auto: Mapping[str, object]):
        self.fields, self.defaults, self.auto = fields, defaults, auto
        self.buf = bytearray(FILLER * (size // 4))

    def get(self, name: str) -> object:
        return _value(self.fields, name, self.auto.get(name), self.defaults)

    def put(self, name: str, offset: int, code: str) -> None:
        value = self.get(name)
        if value is not None:
            struct.pack_into("<" + code, self.buf, offset, value)

    def put_bytes(self, offset: int, data: bytes, limit: int) -> None:
        if len(data) > limit:
            raise ValueError(f"{len(data)} bytes do not fit in a {limit}-byte header slot at {offset:#x}")
        self.buf[offset : offset + len(data)] = data


def _context_bytes(b: _Builder, wide: bool) -> bytes | None:
    ctx = b.get("context")
    if ctx is None or isinstance(ctx, bytes | bytearray):
        return ctx
    return amd64_context(ctx) if wide else x86_context(ctx)  # type: ignore[arg-type]


def _exception_bytes(b: _Builder, wide: bool, pc: int) -> bytes | None:
    exc = b.get("exception")
    if exc is None or isinstance(exc, bytes | bytearray):
        return exc
    assert isinstance(exc, ExceptionFields)
    address = pc if exc.address is None else exc.address
    make = exception_record64 if wide else exception_record32
    return make(exc.code, exc.flags, exc.record, address, exc.parameters)


def _time(b: _Builder) -> int | None:
    value = b.get("system_time")
    return filetime(value) if isinstance(value, dt.datetime) else value  # type: ignore[return-value]


def _pc(ctx: bytes | None, wide: bool) -> int:
    if ctx is None or len(ctx) < (0x100 if wide else 0xBC):
        return 0
    return struct.unpack_from("<Q", ctx, 0xF8)[0] if wide else struct.unpack_from("<I", ctx, 0xB8)[0]


def build_header64(fields: HeaderFields, **auto: object) -> bytearray:
    """DUMP_HEADER64 ('PAGEDU64', 0x2000 bytes). ``auto`` supplies the writer-computed values."""
    b = _Builder(fields, HEADER64_SIZE, _DEFAULTS64, {"machine_image_type": 0x8664, **auto})
    b.buf[0:8] = b"PAGEDU64"
    b.put("major_version", 0x008, "I")
    b.put("minor_version", 0x00C, "I")
    b.put("directory_table_base", 0x010, "Q")
    b.put("pfn_database", 0x018, "Q")
    b.put("ps_loaded_module_list", 0x020, "Q")
    b.put("ps_active_process_head", 0x028, "Q")
    b.put("machine_image_type", 0x030, "I")
    b.put("number_processors", 0x034, "I")
    b.put("bugcheck_code", 0x038, "I")
    params = b.get("bugcheck_parameters")
    if params is not None:
        struct.pack_into("<4Q", b.buf, 0x040, *params)  # type: ignore[misc]
    if (vu := b.get("version_user")) is not None:
        b.put_bytes(0x060, bytes(vu).ljust(32, b"\0"), 32)  # type: ignore[arg-type]
    b.put("kd_debugger_data_block", 0x080, "Q")
    runs = b.get("physical_memory_runs")
    if runs is not None:
        b.put_bytes(0x088, _runs_block(runs, b.get("physical_memory_pages"), wide=True), 700 + 4)  # type: ignore
    ctx = _context_bytes(b, wide=True)
    if ctx is not None:
        b.put_bytes(0x348, ctx, 3000)
    exc = _exception_bytes(b, True, _pc(ctx, True))
    if exc is not None:
        b.put_bytes(0xF00, exc, 0x98)
    b.put("dump_type", 0xF98, "I")
    b.put("required_dump_space", 0xFA0, "Q")
    if (t := _time(b)) is not None:
        struct.pack_into("<Q", b.buf, 0xFA8, t)
    if (comment := b.get("comment")) is not None:
        b.put_bytes(0xFB0, _comment_bytes(comment), 128)  # type: ignore[arg-type]
    b.put("system_uptime", 0x1030, "Q")
    b.put("mini_dump_fields", 0x1038, "I")
    b.put("secondary_data_state", 0x103C, "I")
    b.put("product_type", 0x1040, "I")
    b.put("suite_mask", 0x1044, "I")
    b.put("writer_status", 0x1048, "I")
    b.put("kd_secondary_version", 0x104D, "B")
    b.put("attributes", 0x1050, "I")
    b.put("boot_id", 0x1054, "I")
    return b.buf


def build_header32(fields: HeaderFields, **auto: object) -> bytearray:
    """DUMP_HEADER32 ('PAGEDUMP', 0x1000 bytes); PaeEnabled (byte 0x5C) comes from ``auto['pae_enabled']``."""
    b = _Builder(fields, HEADER32_SIZE, _DEFAULTS32, {"machine_image_type": 0x14C, **auto})
    b.buf[0:8] = b"PAGEDUMP"
    b.put("major_version", 0x008, "I")
    b.put("minor_version", 0x00C, "I")
    b.put("directory_table_base", 0x010, "I")
    b.put("pfn_database", 0x014, "I")
    b.put("ps_loaded_module_list", 0x018, "I")
    b.put("ps_active_process_head", 0x01C, "I")
    b.put("machine_image_type", 0x020, "I")
    b.put("number_processors", 0x024, "I")
    b.put("bugcheck_code", 0x028, "I")
    params = b.get("bugcheck_parameters")
    if params is not None:
        struct.pack_into("<4I", b.buf, 0x02C, *params)  # type: ignore[misc]
    if (vu := b.get("version_user")) is not None:
        b.put_bytes(0x03C, bytes(vu).ljust(32, b"\0"), 32)  # type: ignore[arg-type]
    pae = b.get("pae_enabled")
    if pae is not None:
        b.buf[0x05C] = 1 if pae else 0
    b.put("kd_secondary_version", 0x05D, "B")
    b.put("kd_debugger_data_block", 0x060, "I")
    runs = b.get("physical_memory_runs")
    if runs is not None:
        b.put_bytes(0x064, _runs_block(runs, b.get("physical_memory_pages"), wide=False), 700)  # type: ignore
    ctx = _context_bytes(b, wide=False)
    if ctx is not None:
        b.put_bytes(0x320, ctx, 1200)
    exc = _exception_bytes(b, False, _pc(ctx, False))
    if exc is not None:
        b.put_bytes(0x7D0, exc, 0x50)
    if (comment := b.get("comment")) is not None:
        b.put_bytes(0x820, _comment_bytes(comment), 128)  # type: ignore[arg-type]
    b.put("attributes", 0x8A0, "I")
    b.put("boot_id", 0x8A4, "I")
    b.put("dump_type", 0xF88, "I")
    b.put("mini_dump_fields", 0xF8C, "I")
    b.put("secondary_data_state", 0xF90, "I")
    b.put("product_type", 0xF94, "I")
    b.put("suite_mask", 0xF98, "I")
    b.put("writer_status", 0xF9C, "I")
    b.put("required_dump_space", 0xFA0, "Q")
    b.put("system_uptime", 0xFB8, "Q")
    if (t := _time(b)) is not None:
        struct.pack_into("<Q", b.buf, 0xFC0, t)
    return b.buf
