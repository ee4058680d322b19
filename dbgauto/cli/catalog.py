"""``dbgauto catalog``: look inside a batch output folder's SQLite catalog (read-only)."""

from __future__ import annotations

import csv
import heapq
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from dbgauto.catalog.db import CATALOG_NAME, Catalog, rows_to_dicts
from dbgauto.util.atomic import atomic_write_text
from dbgauto.util.textsafe import terminal_line
from dbgauto.vocab.fmt import hex_text

EXPORT_COLUMNS = (
    "dump_id",
    "path",
    "dump_size",
    "dump_hash",
    "dump_type",
    "is_64bit",
    "machine",
    "build",
    "bugcheck_code",
    "bugcheck_name",
    "host",
    "crash_time",
    "culprit",
    "bucket",
    "status",
    "error_code",
    "error_message",
    "small_path",
    "small_size",
    "engine",
    "debugger_version",
    "total_seconds",
    "run_id",
    "finished",
    "source_deleted",
)


def _open(where: Path) -> Catalog:
    path = where if where.suffix == ".sqlite" or where.is_file() else where / CATALOG_NAME
    return Catalog.open(path, readonly=True)


@click.group("catalog")
def command() -> None:
    """Look inside a batch output's catalog (DIR/dbgauto.sqlite): dumps, outcomes, runs."""


@command.command("list")
@click.argument("where", type=click.Path(exists=True, path_type=Path))
@click.option("--failed", "only", flag_value="failed", help="Only dumps whose newest result failed.")
@click.option("--ok", "only", flag_value="ok", help="Only dumps whose newest result succeeded.")
@click.option(
    "--skipped", "only", flag_value="skipped", help="Only files a run saw and did not process, with the reason."
)
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def list_cmd(where: Path, only: str | None, as_json: bool) -> None:
    """Every dump in the catalog with its newest outcome (WHERE: the output folder or the .sqlite file)."""
    with _open(where) as cat:
        if only == "skipped":
            _list_skipped(cat, as_json)
            return
        rows = cat.latest(status=only, facts=False)
        if as_json:
            click.echo(json.dumps([_export_row(r) for r in rows], indent=2))
            return
        for r in rows:
            outcome = "ok" if r["status"] == "ok" else f"FAILED [{r['error_code']}]"
            bug = hex_text(r["bugcheck_code"]) or "-"
            small = r["small_path"] or "-"
            dump_type = "-" if r["dump_type"] is None else str(r["dump_type"])
            kind = f"type={dump_type:<4} bugcheck={bug:<10} host={r['host'] or '-':<12}"
            click.echo(terminal_line(f"{r['dump_id']:>5}  {outcome:<28} {kind} {r['path']}  -> {small}"))
        click.echo(f"{len(rows)} dump(s)", err=True)


def _list_skipped(cat: Catalog, as_json: bool) -> None:
    rows = [dict(r) for r in cat.skipped()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        why = f"SKIPPED [{r['reason']}]"
        click.echo(terminal_line(f"{why:<30} last seen {r['last_seen']}  {r['path']}  ({r['message'] or '-'})"))
    click.echo(f"{len(rows)} skipped file(s)", err=True)


@command.command("runs")
@click.argument("where", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def runs_cmd(where: Path, as_json: bool) -> None:
    """The batch runs, newest first: when, status, and counts."""
    with _open(where) as cat:
        rows = rows_to_dicts(cat.runs())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(
            f"run {r['id']:>4}  {r['status']:<11} {r['started']} -> {r['ended'] or '-'}  found={r['found']} "
            f"skipped={r['skipped']} ok={r['succeeded']} failed={r['failed']}  (pid {r['pid']} on {r['host']})"
        )


@command.command("show")
@click.argument("where", type=click.Path(exists=True, path_type=Path))
@click.argument("dump")
def show_cmd(where: Path, dump: str) -> None:
    """One dump (by id, path or file name): its header facts and every result, as JSON."""
    with _open(where) as cat:
        row = cat.find_dump(dump)
        if row is None:
            raise click.ClickException(f"{dump!r} is not in {cat.path}")
        data: dict[str, Any] = _hex_values(rows_to_dicts([row])[0])
        data["results"] = [_hex_values(r) for r in rows_to_dicts(cat.results_for_dump(row["id"]))]
    click.echo(json.dumps(data, indent=2, default=str))


HEX_COLUMNS = frozenset({"bugcheck_code", "machine", "bugcheck_parameters", "system_time"})
"""Columns written as ``"0x…"`` strings, the convention of every dbgauto JSON (report JSON, ``info --json``)."""


def _hex_values(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with codes and addresses as hex strings (JSON numbers lose precision above 2**53)."""
    out = dict(d)
    for key in HEX_COLUMNS & out.keys():
        value = out[key]
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] = f"{value:#x}"
        elif isinstance(value, list):
            out[key] = [f"{v:#x}" if isinstance(v, int) else v for v in value]
    return out


def _export_row(row: Any) -> dict[str, Any]:
    d = dict(row)
    return _hex_values({k: d.get(k) for k in EXPORT_COLUMNS})


@command.command("export")
@click.argument("where", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default stdout).")
@click.option("--facts", "with_facts", is_flag=True, help="JSON only: include each dump's facts.")
@click.option(
    "--skipped/--no-skipped",
    "with_skipped",
    default=True,
    show_default=True,
    help="Include the files runs saw and did not process (status skipped, error_code the reason), as index.csv does.",
)
def export_cmd(where: Path, fmt: str, output: Path | None, with_facts: bool, with_skipped: bool) -> None:
    """Every dump's newest outcome, and every file seen and skipped, as JSON (a list of objects) or CSV (one
    row per file), by path: the rows index.csv shows.

    A skipped file's row has status ``skipped``, ``error_code`` the reason (older_than_since, not_a_dump,
    unreadable), ``error_message`` its words, ``dump_size``, ``host``, ``run_id`` (the last run that skipped
    it) and ``finished`` (when it was last seen); its other columns are empty (no dump id, facts or outputs).
    """
    facts = with_facts and fmt == "json"
    records = []
    skipped = 0
    with _open(where) as cat:
        cat.prefetch()  # every row is read: in file order first, not page by page (Catalog.prefetch)
        rows: Iterable[Any] = cat.latest(facts=facts)
        if with_skipped:
            rows = heapq.merge(rows, cat.skipped_summaries(), key=lambda r: r["path"])
        for r in rows:
            rec = _export_row(r)
            if r["status"] == "skipped":
                skipped += 1
                if facts:
                    rec["facts"], rec["report_paths"] = None, {}
            elif facts:
                rec["facts"] = json.loads(r["facts"]) if r["facts"] else None
                rec["report_paths"] = json.loads(r["report_paths"]) if r["report_paths"] else {}
            records.append(rec)
    if fmt == "json":
        text = json.dumps(records, indent=2) + "\n"
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(EXPORT_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        text = buf.getvalue()
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(output, text)
        click.echo(f"{len(records) - skipped} dump(s), {skipped} skipped file(s) written to {output}", err=True)


@command.command("buckets")
@click.argument("where", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def buckets_cmd(where: Path, as_json: bool) -> None:
    """Crashes grouped by bucket (bug check + culprit), largest first: count, hosts, first/last seen."""
    with _open(where) as cat:
        rows = [dict(r) for r in cat.buckets()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for b in rows:
        click.echo(
            f"{b['count']:>7}  {b['hosts']:>5} host(s)  {(b['first_seen'] or '')[:10]:<10} .. "
            f"{(b['last_seen'] or '')[:10]:<10}  {b['bucket']}"
        )
    click.echo(f"{len(rows)} bucket(s)", err=True)


def _parse_since(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    when = when if when.tzinfo else when.astimezone()
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


@command.command("changes")
@click.argument("where", type=click.Path(exists=True, path_type=Path))
@click.option("--since", required=True, callback=_parse_since, metavar="DATE", help="Results recorded since DATE.")
@click.option("--json", "as_json", is_flag=True)
def changes_cmd(where: Path, since: str, as_json: bool) -> None:
    """What changed since DATE: new buckets, rising buckets, regressions, hosts with repeated crashes."""
    from dbgauto.catalog.changes import changes_since

    with _open(where) as cat:
        cat.prefetch()
        ch = changes_since(cat.conn, since)
    if as_json:
        click.echo(json.dumps(ch, indent=2))
        return
    click.echo(f"since {ch['since']}: {ch['recorded']} dump(s) recorded, {ch['failed']} failed")
    for b in ch["new_buckets"]:
        click.echo(f"new         {b['bucket']}  ({b['count']} dump(s), {b['hosts']} host(s))")
    for b in ch["rising"]:
        click.echo(f"rising      {b['bucket']}  ({b['window']} in 24 h, baseline {b['baseline_daily']}/day)")
    for b in ch["regressions"]:
        click.echo(f"regression  {b['bucket']}  ({b['culprit']} {b['previous_timestamp']} -> {b['timestamp']})")
    for h in ch["repeat_hosts"]:
        click.echo(f"repeat host {h['host']}  ({h['crashes']} crashes in 24 h)")
