"""DumpHeader: the facts a DUMP_HEADER32/64 records, decoded once, with the "PAGE" filler turned into None.

Windows fills the header with the dword "PAGE" before writing the fields it knows, so a field still holding
the filler is *absent* (None), never a number. The signature itself is literally "PAGE" and is kept. Byte
fields (PaeEnabled, KdSecondaryVersion) are absent when they hold the filler's letter for their position.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from dbgauto.errors import TruncatedDumpError
from dbgauto.kdump.constants import (
    HEADER32_SIZE,
    HEADER64_SIZE,
)
from dbgauto.kdump.structs.context import (
    CONTEXT_LAYOUTS,
    EXCEPTION_RECORD32,
    EXCEPTION_RECORD64,
    CpuContext,
    ExceptionRecord,
    parse_context,
    parse_exception,
)
from dbgauto.kdump.structs.header import (
    HEADER32,
    HEADER64,
    PHYSMEM_DESC32,
    PHYSMEM_DESC64,
    PHYSMEM_MAX_RUNS32,
    PHYSMEM_MAX_RUNS64,
    PHYSMEM_RUN32,
    PHYSMEM_RUN64,
)
from dbgauto.util.layout import PAGE_FILL, PAGE_FILL32, PAGE_FILL64, Buffer, is_page_fill

_FILETIME_EPOCH: Final = datetime(1601, 1, 1, tzinfo=UTC)
# Largest FILETIME a datetime can hold (year 9999); anything above is garbage, not a time.
_FILETIME_MAX: Final = (datetime(9999, 12, 31, tzinfo=UTC) - _FILETIME_EPOCH) // timedelta(microseconds=1) * 10


def filetime_to_datetime(raw: int | None) -> datetime | None:
    """A FILETIME (100 ns since 1601-01-01 UTC) as an aware UTC datetime; None for 0 / absent / out of range."""
    if not raw or raw > _FILETIME_MAX:
        return None
    return _FILETIME_EPOCH + timedelta(microseconds=raw // 10)


@dataclass(frozen=True, slots=True)
class DumpHeader:
    """Decoded DUMP_HEADER32/64 (see docs/architecture.md). ``None`` = "PAGE" filler / absent."""

    signature: bytes
    is_64bit: bool
    major_version: int | None
    minor_version: int | None
    directory_table_base: int | None
    pfn_database: int | None
    ps_loaded_module_list: int | None
    ps_active_process_head: int | None
    machine: int | None
    number_processors: int | None
    bugcheck_code: int | None
    bugcheck_parameters: tuple[int | None, int | None, int | None, int | None]
    pae_enabled: bool | None
    kd_debugger_data_block: int | None
    dump_type: int | None
    required_dump_space: int | None
    system_time: datetime | None
    system_time_raw: int | None
    system_uptime_100ns: int | None
    comment: str | None
    mini_dump_fields: int | None
    secondary_data_state: int | None
    product_type: int | None
    suite_mask: int | None
    writer_status: int | None
    kd_secondary_version: int | None
    attributes: int | None
    boot_id: int | None
    physical_memory_runs: tuple[tuple[int, int], ...] | None
    physical_memory_pages: int | None
    context: CpuContext | None
    exception: ExceptionRecord | None
    warnings: tuple[str, ...] = field(default=())
    run_table_problem: str | None = None  # why physical_memory_runs is None although the table is not filler

    @property
    def build(self) -> int | None:
        """The NT build number (MinorVersion)."""
        return self.minor_version

    @property
    def system_uptime_seconds(self) -> float | None:
        return None if self.system_uptime_100ns is None else self.system_uptime_100ns / 1e7

    @property
    def header_size(self) -> int:
        return HEADER64_SIZE if self.is_64bit else HEADER32_SIZE

    @classmethod
    def parse(cls, buf: Buffer, path: os.PathLike[str] | str | None = None) -> DumpHeader:
        """Decode the header at the start of ``buf`` (PAGEDUMP or PAGEDU64 already checked by detect.sniff)."""
        is_64bit = bytes(memoryview(buf)[4:8]) == b"DU64"
        lay = HEADER64 if is_64bit else HEADER32
        if len(buf) < lay.size:
            raise TruncatedDumpError(path, f"{lay.name} is truncated", expected=lay.size, actual=len(buf))
        v = lay.unpack(buf, 0, page_fill_absent=True)
        warnings: list[str] = []

        machine = v["machine_image_type"]
        pae: bool | None = None
        if not is_64bit and not _byte_is_filler(buf, lay.offset_of("pae_enabled")):
            pae = bool(v["pae_enabled"])
        kd_secondary = None
        if not _byte_is_filler(buf, lay.offset_of("kd_secondary_version")):
            kd_secondary = v["kd_secondary_version"]

        fill = PAGE_FILL64 if is_64bit else PAGE_FILL32
        raw_params = lay.read(buf, "bugcheck_parameters")
        params = tuple(None if p == fill else p for p in raw_params)  # each "PAGE" parameter is absent
        raw_time = v["system_time"]
        runs, pages, run_table_problem = _physical_memory_block(buf, lay.offset_of("physical_memory_block"), is_64bit)
        if run_table_problem is not None:
            warnings.append(run_table_problem)
        context = _context(buf, lay.offset_of("context_record"), machine, lay.by_name["context_record"].size, warnings)
        exception = _exception(buf, lay.offset_of("exception"), is_64bit)
        return cls(
            signature=bytes(memoryview(buf)[0:8]),
            is_64bit=is_64bit,
            major_version=v["major_version"],
            minor_version=v["minor_version"],
            directory_table_base=v["directory_table_base"],
            pfn_database=v["pfn_database"],
            ps_loaded_module_list=v["ps_loaded_module_list"],
            ps_active_process_head=v["ps_active_process_head"],
            machine=machine,
            number_processors=v["number_processors"],
            bugcheck_code=v["bugcheck_code"],
            bugcheck_parameters=params,  # type: ignore[arg-type]
            pae_enabled=pae,
            kd_debugger_data_block=v["kd_debugger_data_block"],
            dump_type=v["dump_type"],
            required_dump_space=v["required_dump_space"],
            system_time=filetime_to_datetime(raw_time),
            system_time_raw=raw_time,
            system_uptime_100ns=v["system_up_time"],
            comment=_comment(v["comment"]),
            mini_dump_fields=v["mini_dump_fields"],
            secondary_data_state=v["secondary_data_state"],
            product_type=v["product_type"],
            suite_mask=v["suite_mask"],
            writer_status=v["writer_status"],
            kd_secondary_version=kd_secondary,
            attributes=v["attributes"],
            boot_id=v["boot_id"],
            physical_memory_runs=runs,
            physical_memory_pages=pages,
            context=context,
            exception=exception,
            warnings=tuple(warnings),
            run_table_problem=run_table_problem,
        )


def _byte_is_filler(buf: Buffer, offset: int) -> bool:
    """A byte field is absent when it still holds the filler's byte for its position ('P', 'A', 'G' or 'E').

    Real values of PaeEnabled (0/1) and KdSecondaryVersion (small) never equal those letters.
    """
    return memoryview(buf)[offset] == PAGE_FILL[offset % 4]


def _comment(raw: bytes | None) -> str | None:
    """The ASCII comment up to its NUL; None when absent, empty or filler."""
    if raw is None:
        return None
    text = raw.split(b"\0", 1)[0]
    if not text or is_page_fill(text):
        return None
    return text.decode("latin-1")


def _physical_memory_block(
    buf: Buffer, offset: int, is_64bit: bool
) -> tuple[tuple[tuple[int, int], ...] | None, int | None, str | None]:
    """The run table (PHYSICAL_MEMORY_DESCRIPTOR32/64): runs, NumberOfPages (None where filler) and, when the
    runs are unusable although present, why."""
    desc, run, max_runs = (
        (PHYSMEM_DESC64, PHYSMEM_RUN64, PHYSMEM_MAX_RUNS64)
        if is_64bit
        else (PHYSMEM_DESC32, PHYSMEM_RUN32, PHYSMEM_MAX_RUNS32)
    )
    d = desc.unpack(buf, offset, page_fill_absent=True)
    n_runs, n_pages = d["number_of_runs"], d["number_of_pages"]
    if n_runs is None:
        return None, n_pages, None
    if n_runs > max_runs:
        return None, n_pages, f"run table claims {n_runs} runs, the header holds at most {max_runs}; ignored"
    runs = []
    for i in range(n_runs):
        r = run.unpack(buf, offset + desc.size + i * run.size)
        runs.append((r["base_page"], r["page_count"]))
    return tuple(runs), n_pages, None


def _context(buf: Buffer, offset: int, machine: int | None, room: int, warnings: list[str]) -> CpuContext | None:
    lay = CONTEXT_LAYOUTS.get(machine) if machine is not None else None
    if lay is None:
        if machine is not None:
            warnings.append(f"no CONTEXT layout for machine {machine:#x}; registers not decoded")
        return None
    if lay.size > room:
        warnings.append(f"CONTEXT of machine {machine:#x} does not fit the header's context slot")
        return None
    if is_page_fill(memoryview(buf)[offset : offset + lay.size]):
        return None
    return parse_context(machine, buf, offset)  # type: ignore[arg-type]


def _exception(buf: Buffer, offset: int, is_64bit: bool) -> ExceptionRecord | None:
    lay = EXCEPTION_RECORD64 if is_64bit else EXCEPTION_RECORD32
    if is_page_fill(memoryview(buf)[offset : offset + lay.size]):
        return None
    return parse_exception(is_64bit, buf, offset)
