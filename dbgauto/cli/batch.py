"""``dbgauto batch``: convert and report on every new or changed dump under some folders.

Exit status: 0 every dump processed in this run succeeded (or nothing was new), 1 some failed (listed at
the end, one line each) or another batch holds the output folder, 2 usage errors.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dbgauto.batch.hosts import DEFAULT_HOST_PATTERN, HostPattern
from dbgauto.batch.poolstart import prestart_forkserver
from dbgauto.cli.symopts import symbols_option
from dbgauto.engines.select import ENGINE_CHOICES, ENGINE_HELP
from dbgauto.errors import DbgautoError
from dbgauto.util.signals import interrupt_main, on_stop

if TYPE_CHECKING:
    from dbgauto.batch.coordinator import BatchSummary

# The coordinator (and through it the catalog, the notifiers and the report layer) is imported when the command
# runs, after the local pool's fork server was started: the two load at once (batch/poolstart.py).

REPORT_FORMATS = ("html", "md", "txt", "json")  # per-dump report formats a batch writes (``--formats``)


def _parse_since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    return when if when.tzinfo else when.astimezone()  # naive = local time, as users type it


def _parse_formats(ctx: click.Context, param: click.Parameter, value: str | tuple[str, ...]) -> tuple[str, ...]:
    """``-f html,json`` or ``-f html -f json`` (the same spelling as ``report``)."""
    items = (value,) if isinstance(value, str) else value
    formats = tuple(dict.fromkeys(f.strip().lower() for v in items for f in v.split(",") if f.strip()))
    if "none" in formats:  # catalog-only: facts into the catalog and the index, no per-dump report files
        if len(formats) > 1:
            raise click.BadParameter("'none' cannot be combined with other formats")
        return ()
    bad = [f for f in formats if f not in REPORT_FORMATS]
    if bad or not formats:
        raise click.BadParameter(
            f"unknown format(s) {', '.join(bad) or '(none)'}; choose from {', '.join(REPORT_FORMATS)}"
        )
    return formats


def print_summary(s: BatchSummary, *, out: Path) -> None:
    from dbgauto.batch.progress import failure_line

    echo = click.echo
    if s.found == 0:
        echo(f"run {s.run_id}: no dumps found (files starting with PAGEDUMP / PAGEDU64)")
    elif s.processed == 0:
        extra = ""
        if s.skipped_failed:
            extra = f" ({s.skipped_failed} of them failed before; use --retry-failed to try those again)"
        echo(f"run {s.run_id}: nothing new: {s.skipped} dump(s) found, all unchanged since they were processed{extra}")
    else:
        echo(
            f"run {s.run_id}: {s.found} dump(s) found, {s.skipped} unchanged, {s.processed} processed: "
            f"{s.succeeded} succeeded, {len(s.failures)} failed"
        )
    if s.skipped_files:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(s.skipped_files.items()))
        echo(f"seen, not processed: {sum(s.skipped_files.values())} file(s) ({why}; status skipped in the index)")
    if (out / "small").is_dir():
        echo(f"small dumps: {out / 'small'}")
    if (out / "reports").is_dir():
        echo(f"reports:     {out / 'reports'}")
    if s.index_html is not None:
        echo(f"index:       {s.index_html}" + (f"  (CSV: {s.index_csv})" if s.index_csv else ""))
    echo(f"catalog:     {s.catalog}")
    for src in s.deleted:
        echo(f"deleted source (verified): {src}")
    for src, why in s.kept:
        echo(f"kept source {src}: {why}")
    ch = s.changes or {}
    for b in ch.get("new_buckets") or []:
        echo(f"new bucket: {b['bucket']} ({b['count']} dump(s))")
    for b in ch.get("rising") or []:
        echo(f"rising bucket: {b['bucket']} ({b['window']} in 24 h, baseline {b['baseline_daily']}/day)")
    for b in ch.get("regressions") or []:
        echo(f"regression: {b['bucket']} ({b['culprit']} {b['previous_timestamp']} -> {b['timestamp']})")
    for h in ch.get("repeat_hosts") or []:
        echo(f"repeat host: {h['host']} ({h['crashes']} crashes in 24 h)")
    for problem in s.notify_problems:
        echo(f"notifier {problem}", err=True)
    if s.pruned:
        echo(f"removed {s.pruned} generated file(s) older than --keep-days")
    if s.failures:
        echo(f"failed ({len(s.failures)}):")
        for rec in s.failures:
            echo("  " + failure_line(rec.source.path, rec.error_code, rec.error_message))


@click.command("batch")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: small/, reports/, index.html, index.csv and the catalog dbgauto.sqlite.",
)
@click.option(
    "--convert/--no-convert", default=True, show_default=True, help="Write a small memory dump per large dump."
)
@click.option("--report/--no-report", default=True, show_default=True, help="Facts, per-dump reports and the index.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Worker processes (with --scheduler: the cluster's threads decide).",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINE_CHOICES, case_sensitive=False),
    default="native",
    show_default=True,
    help=ENGINE_HELP,
)
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run the tasks on this Dask scheduler instead.")
@click.option("--since", callback=_parse_since, metavar="DATE", help="Only dumps modified at or after DATE.")
@click.option(
    "--delete-source-after-verify",
    is_flag=True,
    help="Delete a source once its small dump re-opens and its facts equal the source's.",
)
@click.option(
    "-f",
    "--format",
    "--formats",
    "formats",
    multiple=True,
    default=("html,json",),
    show_default=True,
    callback=_parse_formats,
    help=f"Per-dump report formats ({','.join(REPORT_FORMATS)}), or none: facts into the catalog and the index"
    " only, no per-dump report files.",
)
@click.option("--wait", is_flag=True, help="If another batch holds the output folder, wait for it instead of exiting.")
@click.option("--wait-timeout", type=float, metavar="SECONDS", help="With --wait: give up after SECONDS.")
@click.option(
    "--task-timeout",
    type=click.FloatRange(min=0.1),
    default=900.0,
    show_default=True,
    metavar="SECONDS",
    help="Fail a dump whose task runs longer, and move on.",
)
@click.option("--retry-failed", is_flag=True, help="Also re-run unchanged dumps whose last attempt failed.")
@click.option("--force", is_flag=True, help="Process every dump found, unchanged or not (rewrites its outputs).")
@click.option(
    "--max-tasks-per-child",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Recycle a worker process after this many dumps.",
)
@click.option(
    "--templates",
    "template_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Template folder overriding the defaults (repeatable).",
)
@click.option(
    "--progress/--no-progress",
    "show_progress",
    default=None,
    help="Rich progress display (default: when stderr is a terminal).",
)
@click.option(
    "--host-from",
    default=DEFAULT_HOST_PATTERN,
    show_default=True,
    metavar="PATTERN",
    help="Where the machine name sits in a dump's path under its source: {host} is one folder, * one name, "
    "** any folders (e.g. '{host}/Minidump/*').",
)
@click.option(
    "--keep-days",
    type=click.FloatRange(min=0),
    metavar="N",
    help="Delete generated small dumps and reports older than N days (never sources; catalog rows are kept).",
)
@click.option("--notify-webhook", metavar="URL", help="POST the run summary as JSON here (or $DBGAUTO_WEBHOOK_URL).")
@click.option("--notify-smtp", metavar="HOST[:PORT]", help="Mail the run summary through this SMTP server.")
@click.option("--notify-to", multiple=True, metavar="ADDRESS", help="Mail recipient (repeatable).")
@click.option("--notify-from", default="dbgauto@localhost", show_default=True, metavar="ADDRESS")
@click.option("--smtp-user", metavar="USER", help="SMTP login; the password is read from $DBGAUTO_SMTP_PASSWORD.")
@click.option("--smtp-starttls", is_flag=True, help="STARTTLS before logging in.")
@click.option("--events", "events_path", metavar="FILE", help="Append JSON-lines events (results, changes) here.")
@click.option("--notify-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS")
@click.option("--notify-only-changes", is_flag=True, help="Webhook/e-mail only when something changed or failed.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
@symbols_option()
def command(
    sources: tuple[Path, ...],
    out_dir: Path,
    convert: bool,
    report: bool,
    jobs: int,
    engine: str,
    scheduler: str | None,
    since: datetime | None,
    delete_source_after_verify: bool,
    formats: tuple[str, ...],
    wait: bool,
    wait_timeout: float | None,
    task_timeout: float,
    retry_failed: bool,
    force: bool,
    max_tasks_per_child: int,
    template_dirs: tuple[Path, ...],
    show_progress: bool | None,
    host_from: str,
    keep_days: float | None,
    notify_webhook: str | None,
    notify_smtp: str | None,
    notify_to: tuple[str, ...],
    notify_from: str,
    smtp_user: str | None,
    smtp_starttls: bool,
    events_path: str | None,
    notify_timeout: float,
    notify_only_changes: bool,
    as_json: bool,
    symbol_path: str | None,
) -> None:
    """Convert and report on every new or changed dump under SOURCES (files or folders, recursive).

    Dumps are found by their signature, not their extension. Sources are never modified (unless
    --delete-source-after-verify). Unchanged dumps already in the catalog are skipped, so running the
    same command again (e.g. nightly) processes only what is new.
    """
    missing = [str(s) for s in sources if not s.exists()]
    if missing:
        raise click.UsageError(f"no such file or folder: {', '.join(missing)}")
    if scheduler is None:
        prestart_forkserver()  # first: its process imports the worker stack while this one imports the rest
    from dbgauto.batch.coordinator import BatchOptions, run_batch
    from dbgauto.batch.notify import NotifyOptions
    from dbgauto.batch.progress import make_progress

    if delete_source_after_verify and not convert:
        raise click.UsageError("--delete-source-after-verify needs --convert (the small dump replaces the source)")
    if scheduler is not None and "://" not in scheduler:
        raise click.BadParameter(f"{scheduler!r}: expected tcp://HOST:PORT", param_hint="--scheduler")
    if engine.lower() not in ("native", "auto"):  # fail once, up front, with the doctor's reason
        from dbgauto.engines.select import select_engine

        select_engine(engine)
    try:
        HostPattern(host_from)
    except DbgautoError as exc:
        raise click.BadParameter(str(exc), param_hint="--host-from") from None
    if notify_smtp and not notify_to:
        raise click.UsageError("--notify-smtp needs at least one --notify-to address")
    root = logging.getLogger()
    batch_log = logging.getLogger("dbgauto.batch")
    if root.getEffectiveLevel() <= logging.WARNING and batch_log.level == logging.NOTSET:
        batch_log.setLevel(logging.INFO)  # plain progress lines unless -q
    opts = BatchOptions(
        sources=[str(s) for s in sources],
        out_dir=str(out_dir),
        convert=convert,
        report=report,
        jobs=jobs,
        engine=engine,
        scheduler=scheduler,
        since=since.astimezone(UTC) if since else None,
        delete_source_after_verify=delete_source_after_verify,
        formats=formats,
        wait=wait,
        wait_timeout=wait_timeout,
        task_timeout=task_timeout,
        retry_failed=retry_failed,
        force=force,
        max_tasks_per_child=max_tasks_per_child,
        template_dirs=tuple(str(t) for t in template_dirs),
        symbol_path=symbol_path,
        host_from=host_from,
        keep_days=keep_days,
        notify=NotifyOptions(
            webhook=notify_webhook,
            smtp=notify_smtp,
            mail_to=notify_to,
            mail_from=notify_from,
            smtp_user=smtp_user,
            starttls=smtp_starttls,
            events=events_path,
            timeout=notify_timeout,
            only_changes=notify_only_changes,
        ),
    )
    # SIGTERM, and on Windows Ctrl+Break / console close, stop the batch like Ctrl+C: workers are stopped and
    # the run is recorded as interrupted (the next run resumes it)
    restore = on_stop(interrupt_main)
    try:
        summary = run_batch(opts, make_progress(enabled=show_progress, stream=sys.stderr))
    finally:
        restore()
    if as_json:
        click.echo(json.dumps(summary_dict(summary), indent=2))
    else:
        print_summary(summary, out=summary.out_dir)
    sys.exit(summary.exit_code)


def summary_dict(s: BatchSummary) -> dict[str, object]:
    return {
        "run_id": s.run_id,
        "out_dir": str(s.out_dir),
        "catalog": str(s.catalog),
        "index_html": str(s.index_html) if s.index_html else None,
        "index_csv": str(s.index_csv) if s.index_csv else None,
        "found": s.found,
        "skipped": s.skipped,
        "skipped_files": s.skipped_files,
        "succeeded": s.succeeded,
        "failed": [
            {"source": r.source.path, "error_code": r.error_code, "error_message": r.error_message} for r in s.failures
        ],
        "changes": s.changes,
        "run_summary": str(s.run_summary) if s.run_summary else None,
        "notify_problems": s.notify_problems,
        "pruned": s.pruned,
        "deleted": s.deleted,
        "kept": [{"source": src, "why": why} for src, why in s.kept],
    }
