"""The drivers table body of report.html, built in Python: the one large table of a report.

A small dump lists ~150 drivers; the same rows through the template loop cost ~2 ms per report (8 cells,
each finalized and escaped), here ~0.5 ms, which keeps a report set of 1,000 dumps within its budget.
Text cells get the same treatment as ``{{ }}`` output: control characters made visible, then HTML-escaped.
To change the columns, override the ``drivers`` block and loop over ``facts.drivers`` (templates/README.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime

from markupsafe import Markup, escape

from dbgauto.analysis.facts import DebuggerFact, DriverFact
from dbgauto.report.textsafe import visible
from dbgauto.util.memo import KEPT_TEXT
from dbgauto.vocab.fmt import addr_text, hex_text

__all__ = ["debugger_rows", "driver_rows", "stamp_date", "when_cell"]


def _text(value: str | None) -> Markup:
    if value is None:
        return Markup("")
    return escape(value if value.isprintable() else visible(value))


def stamp_date(value: int | None) -> str:
    """A PE TimeDateStamp as the date it encodes (link time, UTC); "" when absent, zero or out of range."""
    if not value:
        return ""
    try:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return ""


def _stamp_cell(value: int | None) -> str:
    """The date, with the raw value in the tooltip (reproducible builds store a hash there: the raw value is what
    symbol servers key on)."""
    raw = hex_text(value, 8)
    when = stamp_date(value)
    if not when:
        return f"<td>{raw}</td>"
    return f'<td title="TimeDateStamp {raw}">{when}</td>'


def _cells(d: DriverFact, is_64bit: bool | None) -> str:
    """A driver's cells. What a driver's file decides (name, size, stamp, checksum, path) is the same in every
    dump that lists it and is made once per process; the base and end differ with every boot (KASLR)."""
    kept = len(d.name or "") + len(d.path or "") <= KEPT_TEXT  # nothing longer is kept (a hostile dump)
    name_cell = _name_cell if kept else _name_cell.__wrapped__
    file_cells = _file_cells if kept else _file_cells.__wrapped__
    return (
        f"{name_cell(d.name)}<td>{addr_text(d.base, is_64bit)}</td><td>{addr_text(d.end, is_64bit)}</td>"
        + file_cells(d.size, d.timestamp, d.checksum, d.third_party, d.path)
    )


@functools.lru_cache(maxsize=4096)
def _name_cell(name: str | None) -> str:
    return f"<td>{_text(name)}</td>"


@functools.lru_cache(maxsize=4096)
def _file_cells(size: int | None, stamp: int | None, checksum: int | None, third_party: bool, path: str | None) -> str:
    return (
        f"<td>{hex_text(size)}</td>{_stamp_cell(stamp)}<td>{hex_text(checksum)}</td>"
        f"<td>{'yes' if third_party else ''}</td><td>{_text(path)}</td></tr>\n"
    )


def driver_rows(drivers: Sequence[DriverFact], culprit: DriverFact | None, is_64bit: bool | None) -> Markup:
    """``<tr>`` rows: name, base, end, size, timestamp, checksum, third-party, path; the culprit's row marked."""
    return Markup(
        "".join(
            ('<tr class="culprit" title="probable culprit">' if d is culprit else "<tr>") + _cells(d, is_64bit)
            for d in drivers
        )
    )


def when_cell(value: datetime | None) -> Markup:
    """A dump-level time (crash time, file mtime) as a UTC date, the exact stored value (ISO 8601) in the tooltip."""
    if value is None:
        return Markup("")
    raw = value.isoformat()
    shown = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(raw, shown)


def debugger_rows(d: DebuggerFact | None, is_64bit: bool | None) -> list[tuple[str, str]]:
    """What a debugger stated (``CrashFacts.debugger``) as (label, text) rows, absent values left out; the same
    rows in every report format. Text is raw: each template escapes it its own way."""
    if d is None:
        return []

    def h(v: int | None, width: int = 0) -> str | None:
        return None if v is None else hex_text(v, width)

    def a(v: int | None) -> str | None:
        return None if v is None else addr_text(v, is_64bit)

    rows: list[tuple[str, object]] = [
        ("Original dump", d.dump_file),
        ("File in cab", d.file_in_cab),
        ("Dump attributes", h(d.dump_file_attributes)),
        ("Build lab", d.build_lab),
        ("Product", d.product),
        ("Suite", " ".join(d.suite) if d.suite else None),
        ("Processor (prompt)", d.cpu),
        ("IRQL", d.current_irql),
        ("Session time (as printed)", d.session_time_raw),
        ("Failure class", d.failure_class),
        ("Failure bucket", d.failure_bucket_id),
        ("Default bucket", d.default_bucket_id),
        ("Bucket", d.bucket_id),
        ("Bucket function offset", h(d.bucket_id_func_offset)),
        ("Failure hash", d.failure_id_hash),
        ("Symbol", d.symbol_name),
        ("Module", d.module_name),
        ("Image", d.image_name),
        ("Image timestamp", h(d.image_timestamp)),
        ("Image version", d.image_version),
        ("FOLLOWUP_IP", a(d.followup_ip)),
        ("FAULTING_IP", a(d.faulting_ip)),
        ("Followup", d.followup),
        ("Exception code", h(d.exception_code)),
        ("Exception address", a(d.exception_address)),
    ]
    return [(label, str(value)) for label, value in rows if value is not None and value != ""]
