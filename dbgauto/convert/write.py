"""Write the collected parts as a small memory dump, and the one-call conversion ``convert_dump``.

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
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from dbgauto.errors import ConversionError, OutputExistsError
from dbgauto.kdump.constants import DumpType
from dbgauto.kdump.kdbg import KdbgKeys
from dbgauto.util.atomic import atomic_write

from .collect import SmallDumpParts, collect_parts

log = logging.getLogger(__name__)

__all__ = ["ENGINES", "ConvertResult", "build_small_dump", "convert_dump", "default_output", "write_small_dump"]

ENGINES: Final = ("native", "cdb", "dbgeng", "auto")
OUTPUT_SUFFIX: Final = ".mini.dmp"
_EXCEPTION_AREA: Final = {True: (0xF00, 0x98), False: (0x7D0, 0x50)}


@dataclass
class ConvertResult:
    """What one conversion produced."""

    output: Path
    size: int
    engine: str
    debugger_version: str | None = None
    warnings: list[str] = field(default_factory=list)
    source_dump_type: int = 0
    elapsed: float = 0.0


def _header_fields(parts: SmallDumpParts) -> dict[str, Any]:
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
        "bugcheck_parameters": tuple(h.bugcheck_parameters),
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


def build_small_dump(parts: SmallDumpParts, source_buffer: memoryview | bytes | None = None) -> Any:
    """A TriageDumpBuilder holding ``parts`` (the exception record is copied raw from ``source_buffer``)."""
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
        data_blocks=parts.data_blocks,
    )


def write_small_dump(
    parts: SmallDumpParts, out: os.PathLike[str] | str, *, overwrite: bool = False, source_buffer: Any = None
) -> Path:
    """Write ``parts`` as a small memory dump at ``out`` (temporary file + rename)."""
    builder = build_small_dump(parts, source_buffer)
    return Path(builder.write(out, overwrite=overwrite))


def default_output(src: os.PathLike[str] | str, out_dir: os.PathLike[str] | str | None = None) -> Path:
    """``<stem>.mini.dmp`` next to the source, or in ``out_dir``."""
    s = Path(src)
    folder = Path(out_dir) if out_dir is not None else s.parent
    return folder / f"{s.stem}{OUTPUT_SUFFIX}"


def _resolve_output(src: Path, out: os.PathLike[str] | str | None) -> Path:
    if out is None:
        return default_output(src)
    o = Path(out)
    return default_output(src, o) if o.is_dir() else o


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def convert_dump(
    src: os.PathLike[str] | str,
    out: os.PathLike[str] | str | None = None,
    *,
    engine: str = "native",
    overwrite: bool = False,
    keys: KdbgKeys | None = None,
) -> ConvertResult:
    """Convert the large dump ``src`` into a small memory dump at ``out`` (a file, a folder, or None).

    Raises ConversionError (essentials missing), DumpFormatError (bad source), OutputExistsError, and for
    ``engine="cdb"|"dbgeng"`` the engine's EngineUnavailableError. The source is never modified.
    """
    started = time.perf_counter()
    source = Path(src)
    target = _resolve_output(source, out)
    if engine not in ENGINES:
        raise ConversionError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    if _same_file(source, target) or source.resolve() == target.resolve():
        raise ConversionError(f"{source}: the output would replace the source dump")
    if target.exists() and not overwrite:
        raise OutputExistsError(target)
    if engine in ("cdb", "dbgeng"):
        return _convert_with_engine(source, target, engine, overwrite, started)
    from dbgauto.kdump.reader import KernelDump

    with KernelDump.open(source) as dump:
        dump_type = int(dump.dump_type)
        if dump_type == DumpType.TRIAGE:
            with atomic_write(target, overwrite=overwrite) as fh, open(source, "rb") as fin:
                shutil.copyfileobj(fin, fh, 1 << 20)
            warnings = ["already a small memory dump; copied unchanged"]
        else:
            parts = collect_parts(dump, keys=keys)
            write_small_dump(parts, target, overwrite=overwrite, source_buffer=dump.buffer[: dump.header_size])
            warnings = list(dict.fromkeys([*dump.warnings, *parts.warnings]))
    return ConvertResult(
        output=target,
        size=target.stat().st_size,
        engine="native",
        warnings=warnings,
        source_dump_type=dump_type,
        elapsed=time.perf_counter() - started,
    )


def _convert_with_engine(source: Path, target: Path, engine: str, overwrite: bool, started: float) -> ConvertResult:
    """``.dump /m`` by a debugger engine (helper for --engine cdb|dbgeng)."""
    from dbgauto.errors import EngineUnavailableError

    try:
        from dbgauto.engines.select import get_engine  # lazy: engines pull in pexpect / pybag
    except ImportError as exc:
        raise EngineUnavailableError(engine, f"engine support cannot be imported ({exc})") from None
    eng = get_engine(engine)
    avail = eng.available()
    if not avail.ok:
        raise EngineUnavailableError(engine, avail.reason or "not available")
    with eng.open(source) as session:
        written = Path(session.write_small_dump(target, overwrite=overwrite))
        version = session.debugger_version
    from dbgauto.kdump.reader import KernelDump

    with KernelDump.open(source) as dump:
        dump_type = int(dump.dump_type)
    if not written.exists():
        raise ConversionError(f"{source}: {engine} reported success but wrote no {written}")
    return ConvertResult(written, written.stat().st_size, engine, version, [], dump_type, time.perf_counter() - started)
