"""The fleet index (``index.html``/``index.csv`` of a batch output) from summary rows, not from facts.

Why this shape: at 100,000 dumps a server-rendered table is 38 MB and takes minutes to open. Here the rows
travel once, as compact JSON arrays inside a ``<script type="application/json">`` block (data, never run),
and the page's own script (allowed by its hash in the CSP, as before) renders one page of rows at a time,
sorting and filtering the arrays in memory. The file stays one offline document. Buckets (with per-day
sparklines) and what changed since the last run are rendered server-side at the top.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from markupsafe import Markup

from dbgauto.report import charts
from dbgauto.report.outputs import OutputSet
from dbgauto.vocab.fmt import hex_text

__all__ = [
    "FLEET_COLUMNS",
    "INDEX_CSV_COLUMNS",
    "decode_rows",
    "embedded_rows",
    "fleet_csv_rows",
    "index_row",
    "sparkline",
    "write_fleet_index",
]

FLEET_SCRIPT: Final = "fleet_index.js"
FLEET_TEMPLATE: Final = "fleet_index.html"
PAGE_ROWS: Final = 100
MAX_BUCKETS_SHOWN: Final = 100

# The order of each row's array in the embedded JSON (the page script reads the same names from it). Compact
# encoding (index.html at 100,000 dumps): a path travels as its folder (coded) and its file name; a coded
# column holds an index into that column's list of distinct values (``dicts``, after the rows: values are
# collected while the rows stream), so a host, a bug check or a bucket is written once, not once per dump.
FLEET_COLUMNS: Final = (
    "dir",
    "file",
    "host",
    "status",
    "reason",
    "time",
    "bugcheck",
    "code",
    "culprit",
    "bucket",
    "build",
    "machine",
    "process",
    "engine",
    "warnings",
    "report_dir",
    "report_file",
)
CODED_COLUMNS: Final = frozenset(
    {
        "dir",
        "host",
        "status",
        "bugcheck",
        "code",
        "culprit",
        "bucket",
        "build",
        "machine",
        "process",
        "engine",
        "report_dir",
    }
)
_CODED: Final = tuple(i for i, name in enumerate(FLEET_COLUMNS) if name in CODED_COLUMNS)

INDEX_CSV_COLUMNS: Final = (
    "Dump File",
    "Host",
    "Status",
    "Reason",
    "Crash Time",
    "Bug Check String",
    "Bug Check Code",
    "Parameters",
    "Caused By Driver",
    "Bucket",
    "Build",
    "Machine",
    "Process",
    "Engine",
    "Warnings",
    "Full Path",
    "Report",
    "Small Dump",
)


def _safe_href(href: str | None) -> str | None:
    if not href:
        return None
    head = href.split("/", 1)[0]
    scheme = head.split(":", 1)[0].strip().lower() if ":" in head else ""
    return None if scheme and scheme not in ("http", "https", "file") else href


def _split(path: str) -> tuple[str, str]:
    """(folder with its trailing separator, file name): ``/`` or ``\\``, whichever comes last."""
    cut = max(path.rfind("/"), path.rfind("\\")) + 1
    return path[:cut], path[cut:]


def _status(row: Mapping[str, Any]) -> tuple[str, str]:
    """(status shown, reason): ``ok``; ``failed`` / ``failed (will retry)`` with ``[code] message``;
    ``skipped`` with ``[reason] message`` (a file seen and not processed)."""
    if row["status"] == "ok":
        return "ok", ""
    if row["status"] == "skipped":
        return "skipped", f"[{row['error_code']}] {row['error_message'] or ''}".strip()
    label = "failed (will retry)" if row["transient"] else "failed"
    return label, f"[{row['error_code']}] {row['error_message'] or ''}".strip()


def index_row(row: Mapping[str, Any]) -> list[Any]:
    """One dump's values for the page (in :data:`FLEET_COLUMNS` order, not yet coded) from a summary row."""
    status, reason = _status(row)
    reports = json.loads(row["report_paths"] or "{}") if row["report_paths"] else {}
    folder, name = _split(str(row["path"]))
    report_dir, report_file = _split(_safe_href(reports.get("html")) or "")
    return [
        folder,
        name,
        row["host"] or "",
        status,
        reason,
        (row["crash_time"] or "").replace("T", " ")[:19],
        row["bugcheck_name"] or "",
        hex_text(row["bugcheck_code"], 8) if row["bugcheck_code"] is not None else "",
        row["culprit"] or "",
        row["bucket"] or "",
        str(row["build"]) if row["build"] is not None else "",
        row["machine_name"] or "",
        row["process"] or "",
        row["engine"] or "",
        row["warnings_count"] or 0,
        report_dir,
        report_file,
    ]


def embedded_rows(html: str) -> list[dict[str, Any]]:
    """The rows an ``index.html`` carries, decoded (:func:`decode_rows`); [] when it has none."""
    start = html.find('<script type="application/json" id="rows">')
    if start < 0:
        return []
    start = html.index(">", start) + 1
    return decode_rows(json.loads(html[start : html.index("</script>", start)]))


def decode_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The page's embedded rows back as dicts of plain values (what the page script shows; for tests/tools)."""
    cols, dicts = doc["columns"], doc["dicts"]
    return [
        {c: (dicts[i][v] if dicts[i] is not None else v) for i, (c, v) in enumerate(zip(cols, r, strict=True))}
        for r in doc["rows"]
    ]


def fleet_csv_rows(rows: Iterable[Mapping[str, Any]]) -> Iterable[list[Any]]:
    for row in rows:
        status, reason = _status(row)
        reports = json.loads(row["report_paths"] or "{}") if row["report_paths"] else {}
        path = str(row["path"])
        yield [
            path.replace("\\", "/").rsplit("/", 1)[-1],
            row["host"] or "",
            status,
            reason,
            (row["crash_time"] or "").replace("T", " ")[:19],
            row["bugcheck_name"] or "",
            hex_text(row["bugcheck_code"], 8) if row["bugcheck_code"] is not None else "",
            row["parameters"] or "",
            row["culprit"] or "",
            row["bucket"] or "",
            row["build"] if row["build"] is not None else "",
            row["machine_name"] or "",
            row["process"] or "",
            row["engine"] or "",
            row["warnings_count"] or 0,
            path,
            reports.get("html") or "",
            row["small_path"] or "",
        ]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        text = "'" + text  # no formulas from dump text in a spreadsheet
    return text.replace("\u202e", "\\u202e").replace("\r", "\\r")


def sparkline(days: Sequence[tuple[str, int]], *, first: str | None, last: str | None, width: int = 120) -> Markup:
    """A per-day column sparkline (inline SVG) from ``first`` to ``last`` day (at most 92 columns)."""
    if not days or not first or not last:
        return Markup("")
    by_day = dict(days)
    try:
        d0 = datetime.fromisoformat(first).toordinal()
        d1 = datetime.fromisoformat(last).toordinal()
    except ValueError:
        return Markup("")
    d0 = max(d0, d1 - 91)
    span = d1 - d0 + 1
    top = max(by_day.values()) or 1
    h = 18
    step = width / span
    bars = []
    for i in range(span):
        day = datetime.fromordinal(d0 + i).strftime("%Y-%m-%d")
        n = by_day.get(day, 0)
        if n:
            bh = max(1.0, h * n / top)
            bars.append(
                f'<rect x="{i * step:.1f}" y="{h - bh:.1f}" width="{max(1.0, step * 0.8):.1f}" height="{bh:.1f}">'
                f"<title>{day}: {n}</title></rect>"
            )
    return Markup(
        f'<svg class="spark" width="{width}" height="{h}" viewBox="0 0 {width} {h}" role="img" '
        f'aria-label="crashes per day">{"".join(bars)}</svg>'
    )


def _json_safe(text: str) -> str:
    """JSON text safe inside a ``<script type="application/json">`` element (no ``</script>``, no ``<!--``)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


ROWS_MARK: Final = "\x00dbgauto-rows\x00"  # where the streamed rows go in the rendered page


def _csv_chunks(rows: Iterable[Mapping[str, Any]], agg: dict[str, Any]) -> Iterable[bytes]:
    """index.csv as chunks of bytes, counting the charts' aggregates on the way (one pass over the rows)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    buf.write("\ufeff")
    writer.writerow(INDEX_CSV_COLUMNS)
    for n, row in enumerate(rows, start=1):
        writer.writerows([[_cell(v) for v in cells] for cells in fleet_csv_rows([row])])
        agg["total"] += 1
        if row["status"] == "skipped":
            agg["skipped"] += 1
        elif row["status"] != "ok":
            agg["failed"] += 1
        else:
            if row["crash_time"]:
                agg["per_day"][row["crash_time"][:10]] += 1
            if row["bugcheck_name"] or row["bugcheck_code"] is not None:
                agg["bugchecks"][row["bugcheck_name"] or hex_text(row["bugcheck_code"], 8)] += 1
            if row["culprit"]:
                agg["culprits"][row["culprit"]] += 1
            if row["build"] is not None:
                agg["builds"][str(row["build"])] += 1
            if row["host"]:
                agg["hosts"][row["host"]] += 1
        if n % 2000 == 0:
            yield buf.getvalue().encode("utf-8", "backslashreplace")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8", "backslashreplace")


def _html_chunks(page: str, rows: Iterable[Mapping[str, Any]]) -> Iterable[bytes]:
    """The rendered page with the rows' JSON streamed in at :data:`ROWS_MARK`, 2,000 rows per chunk; the
    coded columns' distinct values follow the rows (collected on the way)."""
    head, tail = page.split(ROWS_MARK, 1)
    yield head.encode("utf-8", "backslashreplace")
    yield _json_safe('{"columns":' + json.dumps(FLEET_COLUMNS) + f',"page":{PAGE_ROWS},"rows":[').encode("ascii")
    codes: list[dict[str, int]] = [{} for _ in FLEET_COLUMNS]
    dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
    part: list[str] = []
    sep = ""
    for row in rows:
        cells = index_row(row)
        for i in _CODED:
            known = codes[i]
            cells[i] = known.setdefault(cells[i], len(known))
        part.append(sep + dumps(cells))
        sep = ","
        if len(part) >= 2000:
            yield _json_safe("".join(part)).encode("ascii")
            part.clear()
    yield _json_safe("".join(part)).encode("ascii")
    dicts = [list(codes[i]) if i in _CODED else None for i in range(len(FLEET_COLUMNS))]
    yield _json_safe('],"dicts":' + dumps(dicts) + "}").encode("ascii")
    yield tail.encode("utf-8", "backslashreplace")


def write_fleet_index(
    renderer: Any,
    rows: Callable[[], Iterable[Mapping[str, Any]]] | Iterable[Mapping[str, Any]],
    out_dir: os.PathLike[str] | str,
    *,
    buckets: Sequence[Mapping[str, Any]] = (),
    bucket_days: Iterable[Mapping[str, Any]] = (),
    changes: Mapping[str, Any] | None = None,
    title: str = "dbgauto crash reports",
    html_name: str = "index.html",
    csv_name: str = "index.csv",
) -> tuple[Path, Path]:
    """Write ``index.html`` and ``index.csv`` (published together) from catalog summary rows.

    ``rows`` is best a function returning a fresh iterator (e.g. ``Catalog.summaries``): the rows are then
    streamed twice (CSV and aggregates, then the page's JSON) and never held in memory together."""
    source: Callable[[], Iterable[Mapping[str, Any]]]
    if callable(rows):
        source = rows
    else:
        kept = list(rows)

        def source() -> Iterable[Mapping[str, Any]]:
            return kept

    agg: dict[str, Any] = {
        "total": 0,
        "failed": 0,
        "skipped": 0,
        "per_day": Counter(),
        "bugchecks": Counter(),
        "culprits": Counter(),
        "builds": Counter(),
        "hosts": Counter(),
    }
    days: dict[str, list[tuple[str, int]]] = {}
    for d in bucket_days:
        days.setdefault(d["bucket"], []).append((d["day"], d["n"]))
    bucket_rows = [
        {**dict(b), "spark": sparkline(days.get(b["bucket"], []), first=b["first_seen"], last=b["last_seen"])}
        for b in list(buckets)[:MAX_BUCKETS_SHOWN]
    ]
    script = renderer.render(FLEET_SCRIPT)
    script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    with OutputSet(out_dir) as out:
        csv_path = out.add(csv_name, _csv_chunks(source(), agg))
        chart_set = {
            "per_day": charts.column_chart(sorted(agg["per_day"].items())[-92:], title="Crashes per day"),
            "bugchecks": charts.bar_chart(agg["bugchecks"].most_common(10), title="Top bug checks"),
            "culprits": charts.bar_chart(agg["culprits"].most_common(10), title="Top culprit drivers"),
            "builds": charts.bar_chart(agg["builds"].most_common(10), title="Crashes per OS build"),
            "hosts": charts.bar_chart(agg["hosts"].most_common(10), title="Crashes per host"),
        }
        page = renderer.render(
            FLEET_TEMPLATE,
            title=title,
            total=agg["total"],
            failed=agg["failed"],
            skipped=agg["skipped"],
            buckets=bucket_rows,
            buckets_total=len(buckets),
            changes=changes or {},
            charts=chart_set,
            columns=FLEET_COLUMNS,
            rows_json=Markup(ROWS_MARK),
            script=Markup(script),
            script_hash=script_hash,
            generated=datetime.now(UTC),
        )
        html_path = out.add(html_name, _html_chunks(page, source()))
    return html_path, csv_path
