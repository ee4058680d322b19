"""The whole dbgauto exception tree, in one place.

Every error carries a stable ``code`` (for the catalog and logs) and a one-line ``str()`` that names the
file and the reason, so the CLI can print it as is. Damage that is not fatal is reported as warnings on
results, not raised.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "BadSignatureError",
    "BitmapCountMismatchError",
    "CatalogError",
    "CatalogLockedError",
    "CodecError",
    "CommandTimeoutError",
    "ConversionError",
    "DbgautoError",
    "DebuggerCommandError",
    "DumpFormatError",
    "DumpNotFoundError",
    "EngineCrashedError",
    "EngineError",
    "EngineUnavailableError",
    "ImageFormatError",
    "MemoryAccessError",
    "OutputBusyError",
    "OutputExistsError",
    "PageNotPresentError",
    "PhysicalMemoryError",
    "RangeHeaderError",
    "RunListError",
    "RunListOverflowError",
    "SymbolError",
    "TemplateError",
    "TranslationError",
    "TriageFormatError",
    "TruncatedDumpError",
    "UnsupportedCompressionError",
    "UnsupportedDumpTypeError",
    "UnsupportedMachineError",
]


class DbgautoError(Exception):
    """Root of every error dbgauto raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _where(path: os.PathLike[str] | str | None, offset: int | None) -> str:
    parts = []
    if path is not None:
        parts.append(str(path))
    if offset is not None:
        parts.append(f"offset {offset:#x}")
    return ", ".join(parts) + ": " if parts else ""


class DumpFormatError(DbgautoError):
    """The file is not a dump we can read, or its structures contradict themselves."""

    code = "dump_format"

    def __init__(self, path: os.PathLike[str] | str | None, reason: str, *, offset: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.offset = offset
        self.reason = reason
        super().__init__(f"{_where(path, offset)}{reason}")


class DumpClosedError(DumpFormatError):
    """A read of a dump after it was closed: a caller's bug, never an absent page (which reads as None)."""

    code = "dump_closed"

    def __init__(self, path: os.PathLike[str] | str | None) -> None:
        super().__init__(path, "the dump is closed (read it before closing it)")


class BadSignatureError(DumpFormatError):
    """The first bytes are not PAGEDUMP / PAGEDU64 (or a sub-header signature is wrong)."""

    code = "bad_signature"


class TruncatedDumpError(DumpFormatError):
    """A structure needs bytes past the end of the file."""

    code = "truncated"

    def __init__(
        self,
        path: os.PathLike[str] | str | None,
        reason: str,
        *,
        expected: int,
        actual: int,
        offset: int | None = None,
    ) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(path, f"{reason} (needs {expected:#x} bytes, file has {actual:#x})", offset=offset)


class UnsupportedDumpTypeError(DumpFormatError):
    """A DumpType value the reader does not know (or knows and cannot read)."""

    code = "unsupported_dump_type"

    def __init__(self, path: os.PathLike[str] | str | None, dump_type: int, reason: str = "") -> None:
        self.dump_type = dump_type
        msg = f"unsupported DumpType {dump_type:#x}"
        super().__init__(path, f"{msg}: {reason}" if reason else msg, offset=None)


class UnsupportedMachineError(DumpFormatError):
    """A machine (e.g. ARM64 for large dumps) whose memory we cannot translate yet."""

    code = "unsupported_machine"


class TriageFormatError(DumpFormatError):
    """A small memory dump (triage) section is unreadable; names the section."""

    code = "triage_format"

    def __init__(
        self, path: os.PathLike[str] | str | None, section: str, reason: str, *, offset: int | None = None
    ) -> None:
        self.section = section
        super().__init__(path, f"{section}: {reason}", offset=offset)


class ImageFormatError(DumpFormatError):
    """A PE image (file bytes or an image resident in memory) is malformed; names the image and the structure."""

    code = "image_format"


class PhysicalMemoryError(DumpFormatError):
    """The description of the dump's physical memory (bitmap, run list, ranges) contradicts itself."""

    code = "physical_memory"


class BitmapCountMismatchError(PhysicalMemoryError):
    """popcount(bitmap) differs from the sub-header's TotalPresentPages."""

    code = "bitmap_count_mismatch"


class RunListError(PhysicalMemoryError):
    """A run / range list is malformed (overlap, too many runs, sum differs from NumberOfPages)."""

    code = "run_list"


class RunListOverflowError(RunListError):
    """A run or range reaches past the largest physical address (or its arithmetic overflows)."""

    code = "run_list_overflow"


class RangeHeaderError(PhysicalMemoryError):
    """The RDMP sub-header of a DumpType 8/9/0xA dump is inconsistent."""

    code = "range_header"


class DumpNotFoundError(DbgautoError, FileNotFoundError):
    """The path does not exist (or is not a regular file)."""

    code = "not_found"

    def __init__(self, path: os.PathLike[str] | str, reason: str = "no such file") -> None:
        self.path = Path(path)
        DbgautoError.__init__(self, f"{path}: {reason}")


class MemoryAccessError(DbgautoError):
    """A read of target memory could not be served."""

    code = "memory_access"


class PageNotPresentError(MemoryAccessError):
    """The page holding an address is not in the dump."""

    code = "page_not_present"

    def __init__(self, address: int, *, physical: bool = True, path: os.PathLike[str] | str | None = None) -> None:
        self.address = address
        self.physical = physical
        kind = "physical" if physical else "virtual"
        super().__init__(f"{_where(path, None)}{kind} address {address:#x} is not present in the dump")


class TranslationError(MemoryAccessError):
    """A virtual address does not translate (a paging entry is not present or is malformed)."""

    code = "translation"

    def __init__(self, address: int, reason: str, *, path: os.PathLike[str] | str | None = None) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"{_where(path, None)}cannot translate {address:#x}: {reason}")


class ConversionError(DbgautoError):
    """A large dump lacks what a small dump needs (KDBG, PRCB, thread, context)."""

    code = "conversion"


class OutputExistsError(DbgautoError, FileExistsError):
    """An output exists and overwriting was not asked for."""

    code = "output_exists"

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = Path(path)
        DbgautoError.__init__(self, f"{path}: exists (use --force to overwrite)")


class OutputBusyError(DbgautoError, PermissionError):
    """An output stayed held open by another program (Excel, an antivirus scanner, an indexer) past the retries."""

    code = "output_busy"

    def __init__(self, path: os.PathLike[str] | str, action: str, attempts: int, reason: str) -> None:
        self.path = Path(path)
        self.action = action
        self.attempts = attempts
        DbgautoError.__init__(
            self,
            f"{path}: cannot {action} after {attempts} attempts ({reason}); another program holds the file open "
            "(close it in Excel/the viewer, or exclude the folder from on-access scanning) and run again",
        )


class EngineError(DbgautoError):
    """Something went wrong in a debugger engine."""

    code = "engine"

    def __init__(self, engine: str, message: str) -> None:
        self.engine = engine
        super().__init__(f"{engine}: {message}")


class EngineUnavailableError(EngineError):
    """The engine cannot run here (no pybag, no cdb.exe, not Windows, ...)."""

    code = "engine_unavailable"

    def __init__(self, engine: str, reason: str) -> None:
        self.reason = reason
        super().__init__(engine, f"unavailable: {reason}")


class CommandTimeoutError(EngineError):
    """A debugger command did not finish in time; the session is dead afterwards."""

    code = "command_timeout"

    def __init__(self, engine: str, command: str, timeout: float, output: str = "") -> None:
        self.command = command
        self.timeout = timeout
        self.output = output
        super().__init__(engine, f"command {command!r} timed out after {timeout:g}s")


class DebuggerCommandError(EngineError):
    """The debugger rejected a command, or the engine does not support it."""

    code = "debugger_command"

    def __init__(self, engine: str, command: str, message: str, output: str = "") -> None:
        self.command = command
        self.output = output
        super().__init__(engine, f"{command!r}: {message}")


class EngineCrashedError(EngineError):
    """The debugger process exited or crashed mid-session."""

    code = "engine_crashed"

    def __init__(self, engine: str, message: str, last_output: str = "") -> None:
        self.last_output = last_output
        super().__init__(engine, message)


class TemplateError(DbgautoError):
    """A report template failed to load or render; names the template and line."""

    code = "template"

    def __init__(self, template: str, message: str, *, line: int | None = None) -> None:
        self.template = template
        self.line = line
        where = f"{template}:{line}" if line is not None else template
        super().__init__(f"template {where}: {message}")


class CatalogError(DbgautoError):
    """The SQLite catalog is unusable (corrupt, newer schema, ...)."""

    code = "catalog"


class CatalogWriteError(CatalogError):
    """The catalog could not be written (disk full, read-only file system, I/O error); nothing half-written."""

    code = "catalog_write"


class CatalogLockedError(CatalogError):
    """Another batch run holds the output directory's lock."""

    code = "catalog_locked"


class CodecError(DbgautoError):
    """A JSON document does not fit the model it is read into (``dbgauto.util.codec``): a field of the wrong shape."""

    code = "codec"


class SymbolError(DbgautoError):
    """A symbol file (PDB, ISF table, CAB, symbol-store entry) or symbol server answer is unusable; names it and why."""

    code = "symbol"

    def __init__(self, path: os.PathLike[str] | str | None, reason: str, *, offset: int | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.offset = offset
        self.reason = reason
        super().__init__(f"{_where(path, offset)}{reason}")


class UnsupportedCompressionError(SymbolError):
    """A compressed symbol file (CAB) uses a method we do not decode (Quantum)."""

    code = "unsupported_compression"
