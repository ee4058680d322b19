"""DumpSummary: what a kernel dump's header and physical-memory layout say, read once into one typed model.

``dbgauto info`` prints it (text, or ``to_json(summary, omit_absent=False)`` for ``--json``; schema in
``docs/report-schema.md``), and :func:`header_facts` turns it into the header part of :class:`CrashFacts`,
so the header is interpreted in one place for every output. Values stay numbers here; the codec writes the
fields typed ``Hex`` as ``"0x…"`` strings. ``None`` means absent (the "PAGE" filler, or not applicable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final

from dbgauto.kdump.constants import DumpAttribute
from dbgauto.kdump.structs.context import ExceptionRecord
from dbgauto.util.codec import Hex
from dbgauto.vocab.bugchecks import bugcheck_name
from dbgauto.vocab.dumptypes import dump_type_meaning, dump_type_name
from dbgauto.vocab.fmt import uptime_text
from dbgauto.vocab.machines import machine_enum_name, machine_name
from dbgauto.vocab.products import product_type_label

if TYPE_CHECKING:
    from dbgauto.kdump.reader import KernelDump

__all__ = [
    "SUMMARY_SCHEMA",
    "BitmapSummary",
    "DumpSummary",
    "PhysicalMemorySummary",
    "SystemTime",
    "Uptime",
    "VarietySummary",
    "header_facts",
    "summarize",
]

SUMMARY_SCHEMA: Final = "dbgauto.dumpsummary/1"
# (name, bit) of each DumpAttribute flag, in the enum's order: testing plain ints is ~20x cheaper than IntFlag math
_ATTRIBUTE_BITS: Final = tuple((str(a.name), int(a)) for a in DumpAttribute)


@dataclass(frozen=True, slots=True)
class VarietySummary:
    """The variety as Windows names it, whether the file proves it, and why (``dbgauto.kdump.variety``)."""

    name: str
    certain: bool
    explanation: str


@dataclass(frozen=True, slots=True)
class SystemTime:
    """DUMP_HEADER.SystemTime: decoded (UTC) and the raw FILETIME."""

    utc: datetime
    raw: Hex | None


@dataclass(frozen=True, slots=True)
class Uptime:
    """DUMP_HEADER.SystemUpTime: raw 100 ns units, seconds, and as the debugger prints it (2-digit hours)."""

    raw_100ns: Hex
    seconds: float
    text: str


@dataclass(frozen=True, slots=True)
class BitmapSummary:
    """The SDMP/FDMP bitmap sub-header of a bitmap dump."""

    signature: str
    layout: str
    first_page: Hex
    bitmap_bits: int
    total_present_pages: int
    dump_options: int | None = None


@dataclass(frozen=True, slots=True)
class PhysicalMemorySummary:
    """How the file stores physical memory: the layout name, the run table, the bitmap."""

    layout: str | None
    run_table_pages: int | None
    runs: tuple[tuple[Hex, int], ...] | None  # (base PFN, page count)
    bitmap: BitmapSummary | None


@dataclass(frozen=True, slots=True)
class DumpSummary:
    """One dump's header, variety and physical-memory facts (the ``dbgauto info`` model)."""

    JSON_SCHEMA: ClassVar[str] = SUMMARY_SCHEMA

    file: str
    file_size: int
    signature: str
    is_64bit: bool
    dump_type: int
    dump_type_name: str | None
    dump_type_meaning: str
    variety: VarietySummary
    machine: Hex | None
    machine_name: str | None
    major_version: Hex | None
    build: int | None
    number_processors: int | None
    bugcheck_code: Hex | None
    bugcheck_name: str | None
    bugcheck_parameters: tuple[Hex | None, ...]
    directory_table_base: Hex | None
    pfn_database: Hex | None
    ps_loaded_module_list: Hex | None
    ps_active_process_head: Hex | None
    kd_debugger_data_block: Hex | None
    pae_enabled: bool | None
    system_time: SystemTime | None
    system_uptime: Uptime | None
    comment: str | None
    product_type: Hex | None
    product_type_name: str | None
    suite_mask: Hex | None
    secondary_data_state: Hex | None
    writer_status: Hex | None
    kd_secondary_version: Hex | None
    mini_dump_fields: Hex | None
    attributes: Hex | None
    attribute_names: tuple[str, ...]
    boot_id: Hex | None
    required_dump_space: int | None
    dump_size: int
    pages_present: int | None
    pages_total: int | None
    physical_memory: PhysicalMemorySummary
    paging: str | None
    context: Mapping[str, Any] | None  # machine, context_flags, registers (names depend on the machine)
    exception: ExceptionRecord | None
    warnings: tuple[str, ...] = ()


def summarize(dump: KernelDump) -> DumpSummary:
    """Read one open dump's header facts into a :class:`DumpSummary` (nothing beyond the header is parsed)."""
    h = dump.header
    s = dump.summary()
    attrs = h.attributes
    bm = s["bitmap"]
    up = h.system_uptime_100ns
    return DumpSummary(
        file=str(dump.path),
        file_size=dump.file_size,
        signature=h.signature.decode("ascii", "replace"),
        is_64bit=dump.is_64bit,
        dump_type=int(dump.dump_type),
        dump_type_name=dump_type_name(dump.dump_type),
        dump_type_meaning=dump.variety.dump_type_meaning,
        variety=VarietySummary(dump.variety.name, dump.variety.certain, dump.variety.explanation),
        machine=h.machine,
        machine_name=machine_enum_name(h.machine),
        major_version=h.major_version,
        build=h.minor_version,
        number_processors=h.number_processors,
        bugcheck_code=h.bugcheck_code,
        bugcheck_name=bugcheck_name(h.bugcheck_code),
        bugcheck_parameters=tuple(h.bugcheck_parameters),
        directory_table_base=h.directory_table_base,
        pfn_database=h.pfn_database,
        ps_loaded_module_list=h.ps_loaded_module_list,
        ps_active_process_head=h.ps_active_process_head,
        kd_debugger_data_block=h.kd_debugger_data_block,
        pae_enabled=h.pae_enabled,
        system_time=None if h.system_time is None else SystemTime(h.system_time, h.system_time_raw),
        system_uptime=None if up is None else Uptime(up, up / 1e7, uptime_text(up, hour_digits=2)),
        comment=h.comment,
        product_type=h.product_type,
        product_type_name=product_type_label(h.product_type),
        suite_mask=h.suite_mask,
        secondary_data_state=h.secondary_data_state,
        writer_status=h.writer_status,
        kd_secondary_version=h.kd_secondary_version,
        mini_dump_fields=h.mini_dump_fields,
        attributes=attrs,
        attribute_names=() if attrs is None else tuple(name for name, bit in _ATTRIBUTE_BITS if attrs & bit),
        boot_id=h.boot_id,
        required_dump_space=h.required_dump_space,
        dump_size=dump.file_size,
        pages_present=dump.pages_present,
        pages_total=dump.pages_total,
        physical_memory=PhysicalMemorySummary(
            layout=s["physical_layout"],
            run_table_pages=h.physical_memory_pages,
            runs=None if h.physical_memory_runs is None else tuple(h.physical_memory_runs),
            bitmap=None if bm is None else BitmapSummary(**bm),
        ),
        paging=s["paging"],
        context=None if h.context is None else h.context.to_dict(),
        exception=h.exception,
        warnings=tuple(dump.warnings),
    )


def header_facts(summary: DumpSummary) -> dict[str, Any]:
    """The :class:`~dbgauto.analysis.facts.CrashFacts` fields the header decides (keyword arguments), so facts,
    reports and ``info`` describe the header with the same words. Bug check parameters, PC and process come
    from the collectors; the experimental ``x_exception``/``x_suite_mask`` are written here too."""
    experimental: dict[str, Any] = {}
    exc = summary.exception
    if exc is not None:
        experimental["exception"] = {"code": f"{exc.code:#x}", "address": f"{exc.address:#x}", "flags": exc.flags}
    if summary.suite_mask is not None:
        experimental["suite_mask"] = f"{summary.suite_mask:#x}"
    if summary.variety.explanation:
        experimental["variety_explanation"] = summary.variety.explanation
    st = summary.system_time
    return {
        "variety": summary.variety.name,
        "dump_type": summary.dump_type,
        "dump_type_meaning": dump_type_meaning(summary.dump_type),
        "machine": machine_name(summary.machine),
        "is_64bit": summary.is_64bit,
        "os_build": summary.build,
        "os_major": summary.major_version,
        "product_type": summary.product_type,
        "processors": summary.number_processors,
        "crash_time": None if st is None else st.utc.astimezone(UTC),
        "uptime_seconds": None if summary.system_uptime is None else summary.system_uptime.seconds,
        "comment": summary.comment,
        "experimental": experimental,
    }
