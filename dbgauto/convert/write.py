"""Write a crash's KernelParts as a small memory dump (``.dump /m`` natively): data blocks chosen, laid out, written.

Header rule (what Windows' small dump of the same crash shows, ``observed-triage-x64.md``): every fact of the
crash is copied from the source header (versions, DTB, PfnDataBase, PsLoadedModuleList, PsActiveProcessHead,
machine, processors, bugcheck code and parameters, KdDebuggerDataBlock, CONTEXT, exception record, system time,
uptime, product type, suite mask, writer status, KdSecondaryVersion, comment, PaeEnabled); what only describes
the large file is left as the "PAGE" filler (PhysicalMemoryBlock, VersionUser, SecondaryDataState, Attributes,
BootId); DumpType becomes 4, MiniDumpFields the sections written (0xCFF like the sample), RequiredDumpSpace the
file size (Windows' own value is not knowable from the source).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Final

from dbgauto.errors import ConversionError
from dbgauto.kernel.memory import DumpMemory
from dbgauto.kernel.parts import KernelParts
from dbgauto.util.layout import PAGE_FILL32, PAGE_FILL64

from .policy import policy_inputs, select_data_blocks

log = logging.getLogger(__name__)

__all__ = ["build_small_dump", "write_small_dump"]

_EXCEPTION_AREA: Final = {True: (0xF00, 0x98), False: (0x7D0, 0x50)}


def _filler(is_64bit: bool) -> int:
    return PAGE_FILL64 if is_64bit else PAGE_FILL32


def _header_fields(parts: KernelParts) -> dict[str, Any]:
    h = parts.header
    fields: dict[str, Any] = {
        "major_version": h.major_version,
        "minor_version": h.minor_version,
        "directory_table_base": h.directory_table_base,
        "pfn_database": h.pfn_database,
        "ps_loaded_module_list": h.ps_loaded_module_list,
        "ps_active_process_head": h.ps_active_process_head,
        "number_processors": h.number_processors,
        "bugcheck_code": h.bugcheck_code,
        # a parameter that held the "PAGE" filler is absent: write the filler back rather than invent a value
        "bugcheck_parameters": tuple(
            (PAGE_FILL64 if h.is_64bit else PAGE_FILL32) if v is None else v for v in h.bugcheck_parameters
        ),
        "kd_debugger_data_block": h.kd_debugger_data_block,
        "system_time": h.system_time_raw,
        "system_up_time": h.system_uptime_100ns,
        "product_type": h.product_type,
        "suite_mask": h.suite_mask,
        "writer_status": h.writer_status,
        "kd_secondary_version": h.kd_secondary_version,
    }
    if h.comment:
        fields["comment"] = h.comment.encode("latin-1")[:127] + b"\0"
    if not parts.is_64bit and h.pae_enabled is not None:
        fields["pae_enabled"] = int(h.pae_enabled)
    return {k: v for k, v in fields.items() if v is not None}


def _essentials(parts: KernelParts) -> None:
    missing = [name for name in ("context", "kdbg", "prcb", "thread") if getattr(parts, name) is None]
    if missing:
        raise ConversionError(f"the crash's {', '.join(missing)} could not be read; no small dump can be written")


def build_small_dump(
    parts: KernelParts,
    source_buffer: memoryview | bytes | None = None,
    data_blocks: list[tuple[int, bytes]] | None = None,
) -> Any:
    """A TriageDumpBuilder holding ``parts`` (the exception record is copied raw from ``source_buffer``)."""
    _essentials(parts)
    assert parts.context is not None
    assert parts.kdbg is not None
    from dbgauto.kdump.triage_writer import TriageDumpBuilder

    exception: Any = parts.header.exception
    if source_buffer is not None and exception is not None:
        off, size = _EXCEPTION_AREA[parts.is_64bit]
        exception = bytes(source_buffer[off : off + size])
    return TriageDumpBuilder(
        machine=parts.machine,
        is_64bit=parts.is_64bit,
        header_fields=_header_fields(parts),
        context=parts.context.raw,
        exception=exception,
        mm=parts.mm,
        unloaded_drivers=parts.unloaded_drivers,
        prcb=parts.prcb,
        process=parts.process,
        thread=parts.thread,
        stack=parts.stack,
        top_of_stack=parts.top_of_stack,
        drivers=parts.drivers,
        kdbg=parts.kdbg.raw,
        data_blocks=data_blocks or [],
    )


def write_small_dump(
    parts: KernelParts,
    out: os.PathLike[str] | str,
    *,
    overwrite: bool = False,
    source_buffer: Any = None,
    warnings: list[str] | None = None,
) -> Path:
    """Choose the data blocks (when ``parts.memory`` is a large dump's memory) and write ``parts`` as a small memory
    dump at ``out`` (temporary file + rename). Policy notes go to ``warnings``."""
    blocks: list[tuple[int, bytes]] = []
    if isinstance(parts.memory, DumpMemory):
        blocks = select_data_blocks(parts.memory, policy_inputs(parts), warnings)
    builder = build_small_dump(parts, source_buffer, blocks)
    return Path(builder.write(out, overwrite=overwrite))
