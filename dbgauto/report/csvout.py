"""One CSV row per dump, with BlueScreenView-like columns, for spreadsheets and scripts.

Text cells that a spreadsheet would treat as a formula (leading ``=``, ``+``, ``-``, ``@``, tab, CR) are
prefixed with ``'``: driver names and paths come from the dump and must not run in Excel. Control characters,
CR and bidi overrides in cells are shown as escapes (``\x1b``, ``\r``, ``\u202e``).

Encoding: UTF-8 **with a BOM** (``EF BB BF``), CRLF line ends. The BOM is there because Excel, the main reader,
otherwise decodes the file in the system's ANSI code page and garbles non-ASCII driver and path names; Python
readers use ``encoding="utf-8-sig"``. ``Status`` is ``ok`` when the facts were read without doubts, ``warnings``
when some damage or doubt was noted (see the report's warnings; ``Warnings`` counts them).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from dbgauto.analysis.facts import CrashFacts
from dbgauto.util.atomic import atomic_write_bytes
from dbgauto.util.textsafe import visible
from dbgauto.vocab.fmt import hex_text

__all__ = ["CSV_COLUMNS", "csv_row", "csv_text", "write_csv"]

CSV_COLUMNS: Final = (
    "Dump File",
    "Crash Time",
    "Bug Check String",
    "Bug Check Code",
    "Parameter 1",
    "Parameter 2",
    "Parameter 3",
    "Parameter 4",
    "Caused By Driver",
    "Caused By Address",
    "Culprit Rule",
    "Processor",
    "Crash Address",
    "Stack Address 1",
    "Stack Address 2",
    "Stack Address 3",
    "Processors Count",
    "Major Version",
    "Minor Version",
    "Product Type",
    "Process",
    "Dump Type",
    "Dump File Size",
    "Dump File Time",
    "Full Path",
    "Engine",
    "Warnings",
    "Failure Bucket",
    "Failure Class",
    "Symbol Name",
    "Culprit Evidence",
    "Faulting CPU",
    "IRQL",
    "Status",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = visible(str(value))
    if text and text[0] in "=+-@\t\r":
        text = "'" + text
    return text


def csv_row(f: CrashFacts) -> list[str]:
    """The cells of one dump's row, in :data:`CSV_COLUMNS` order."""
    width = 16 if f.is_64bit else 8
    params = [p.value for p in f.bugcheck.parameters] if f.bugcheck else []
    params += [None] * (4 - len(params))
    frames = [fr for fr in f.unwound_frames if fr.module or fr.symbol][:3]
    frames_text = [fr.location for fr in frames] + [""] * (3 - len(frames))
    culprit = f.culprit
    values: list[Any] = [
        f.source.name if f.source else "",
        f.crash_time.strftime("%Y-%m-%d %H:%M:%S") if f.crash_time else "",
        (f.bugcheck.name or "") if f.bugcheck else "",
        hex_text(f.bugcheck.code, 8) if f.bugcheck else "",
        *(hex_text(v, width) for v in params[:4]),
        culprit.name if culprit else "",
        f"{culprit.name}+{culprit.offset:x}" if culprit and culprit.offset is not None else "",
        culprit.rule if culprit else "",
        f.machine,
        hex_text(f.pc, width),
        *frames_text,
        f.processors,
        f.os_major,
        f.os_build,
        f.product_type_name,
        f.process_name,
        f.dump_type_meaning or (f.variety or ""),
        f.source.size if f.source else "",
        f.source.mtime.strftime("%Y-%m-%d %H:%M:%S") if f.source and f.source.mtime else "",
        f.source.path if f.source else "",
        " ".join(x for x in (f.engine, f.engine_version) if x),
        len(f.warnings),
        f.bucket_id,
        f.failure_class,
        _symbol_name(culprit),
        culprit.evidence if culprit else "",
        f.faulting_cpu,
        f.current_irql,
        "warnings" if f.warnings else "ok",
    ]
    return [_cell(v) for v in values]


def _symbol_name(c: Any) -> str:
    """SYMBOL_NAME as ``!analyze`` prints it: ``module!function+0xoff``, else ``module+0xoff``."""
    if c is None or not c.module:
        return ""
    if c.function:
        return f"{c.module}!{c.function}+{c.offset:#x}" if c.offset else f"{c.module}!{c.function}"
    return f"{c.module}+{c.offset:#x}" if c.offset is not None else c.module


def csv_text(facts: Iterable[CrashFacts]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_row(f) for f in facts)
    return buf.getvalue()


def write_csv(facts: Iterable[CrashFacts], path: os.PathLike[str] | str) -> Path:
    """Write the CSV atomically (UTF-8 with BOM so Excel detects the encoding); returns the path."""
    data = "\ufeff" + csv_text(facts)
    return atomic_write_bytes(path, data.encode("utf-8", "backslashreplace"), overwrite=True)
