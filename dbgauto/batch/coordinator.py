"""The batch coordinator: lock, discover, decide what is new, run tasks, write the catalog, build the index.

Why the coordinator alone writes: the catalog is one SQLite file; workers (local or on other hosts) return
:class:`ResultRecord`s and this process records them in short transactions as they arrive, so a run
killed at any point keeps every committed dump and a rerun picks up the rest.

Results are committed in chunks (``commit_every`` records or ``commit_seconds`` after the first one waiting,
whichever comes first): one transaction and one durability point per chunk, so a kill loses at most the
chunk in flight, whose outputs are rewritten by the next run. The index is rebuilt whenever the catalog
holds a result or a skip row the index was not built from (``Catalog.index_stamp``; a kill between the last
commit and the index is repaired by the next run).

The walk is consumed in chunks (:data:`SCAN_CHUNK` files): each chunk's dumps are looked up in the catalog
and its skipped files (older than ``--since``, ``*.dmp`` files that are not kernel dumps, unreadable ones)
written as one row per path, so the coordinator's memory follows the chunk and the dumps to process, not
the 100,000 files of a fleet share.

Incremental rule (documented in docs/scheduling.md): a path whose size and mtime match the catalog is
unchanged; when they differ, the content hash (sha256 of the head and tail, then the size) decides — same hash
means touched or copied back, not changed. Unchanged dumps are skipped whatever their last outcome
(a broken dump is not retried every night) except transient failures (an I/O error, a file that vanished:
``records.TRANSIENT_CODES``), which the next run retries; ``retry_failed`` re-runs every failed one.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dbgauto.batch.discover import Found, Skipped, dump_signature_problem, is_temp_name, iter_scan
from dbgauto.batch.hosts import DEFAULT_HOST_PATTERN, HostPattern
from dbgauto.batch.lock import batch_lock
from dbgauto.batch.notify import NotifyOptions, notify
from dbgauto.batch.progress import LogProgress, Progress
from dbgauto.batch.retention import prune_outputs
from dbgauto.batch.runner import RunnerOptions, TaskRunner, prestart_forkserver
from dbgauto.batch.tasks import HASH_SCHEME, TaskSpec, content_hash, run_task
from dbgauto.catalog.changes import changes_since
from dbgauto.catalog.db import CATALOG_NAME, Catalog, utc_now
from dbgauto.catalog.records import ResultRecord, SkipRecord, SourceState
from dbgauto.errors import DbgautoError
from dbgauto.report.names import output_stem
from dbgauto.util import fs
from dbgauto.util.atomic import atomic_write_text

__all__ = ["BatchOptions", "BatchSummary", "output_key", "run_batch"]

log = logging.getLogger("dbgauto.batch")

SMALL_DIR = "small"
REPORTS_DIR = "reports"
INDEX_HTML = "index.html"
INDEX_CSV = "index.csv"
RUN_SUMMARY = "run_summary.json"
INDEX_META = "index_stamp"  # Catalog.index_stamp() of what the index was built from


@dataclass(slots=True)
class BatchOptions:
    sources: Sequence[str]
    out_dir: str
    convert: bool = True
    report: bool = True
    jobs: int = 1
    engine: str = "native"
    scheduler: str | None = None
    since: datetime | None = None
    delete_source_after_verify: bool = False
    formats: tuple[str, ...] = ("html", "json")
    wait: bool = False
    wait_timeout: float | None = None
    task_timeout: float | None = 900.0
    retry_failed: bool = False
    force: bool = False
    max_tasks_per_child: int | None = 50
    template_dirs: tuple[str, ...] = ()
    symbol_path: str | None = None  # --symbols; None: each worker resolves the environment's
    host_from: str = DEFAULT_HOST_PATTERN
    keep_days: float | None = None
    notify: NotifyOptions = field(default_factory=NotifyOptions)
    commit_every: int = 64
    commit_seconds: float = 1.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["since"] = self.since.isoformat() if self.since else None
        n = self.notify  # which notifiers, never their addresses or credentials
        d["notify"] = {"webhook": bool(n.webhook), "smtp": bool(n.smtp), "events": bool(n.events)}
        return d


@dataclass(slots=True)
class BatchSummary:
    run_id: int
    out_dir: Path
    catalog: Path
    found: int = 0
    skipped: int = 0
    skipped_failed: int = 0
    succeeded: int = 0
    failures: list[ResultRecord] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (source, why it was not deleted)
    index_html: Path | None = None
    index_csv: Path | None = None
    run_summary: Path | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    notify_problems: list[str] = field(default_factory=list)
    pruned: int = 0
    skipped_files: dict[str, int] = field(default_factory=dict)  # seen, not processed: count per reason

    @property
    def processed(self) -> int:
        return self.succeeded + len(self.failures)

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def output_key(path: os.PathLike[str] | str) -> str:
    """The stem of a source's outputs (:func:`dbgauto.report.names.output_stem`, shared with ``dbgauto report``)."""
    return output_stem(path)


def _require(convert: bool, report: bool) -> None:
    """Fail the whole batch up front (not once per dump) when a part of dbgauto the workers need, or a library
    it needs, is missing. The workers' modules are found, not imported: importing the engines here cost the
    coordinator about 55 ms of CPU at the start of every run, for nothing. The report renderer is imported: the
    coordinator renders the index with it at the end, and importing it now overlaps the pool's start instead."""
    import importlib.util  # (importlib.import_module as well)

    needed = ["dbgauto.kdump.reader"]
    if convert or report:
        needed.append("dbgauto.engines.jobs")
    for module in needed:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError) as exc:  # a parent package that cannot be imported
            raise DbgautoError(f"{module} is not available in this installation ({exc})") from exc
        if found is None:
            raise DbgautoError(f"{module} is not available in this installation")
    try:
        importlib.import_module("dbgauto.report.render")
    except ImportError as exc:
        raise DbgautoError(f"dbgauto.report.render is not available in this installation ({exc})") from exc


def clean_partials(out: Path) -> int:
    """Remove temp files of writers that were killed (we hold the lock, so none is being written now)."""
    removed = 0
    for folder in (out, out / SMALL_DIR, out / REPORTS_DIR):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.is_file() and is_temp_name(entry.name):
                try:
                    fs.unlink(entry, missing_ok=True, attempts=3)
                except OSError as exc:  # held open (Windows): harmless, the next run removes it
                    log.warning("cannot remove %s: %s", entry, exc)
                    continue
                removed += 1
    if removed:
        log.info("removed %d unfinished temporary file(s) left by an interrupted run", removed)
    return removed


def _select(cat: Catalog, found: list[Found], retry_failed: bool, force: bool = False) -> tuple[list[Found], int, int]:
    """Split discovered files into (to process, skipped, skipped-that-had-failed)."""
    if force:
        return list(found), 0, 0
    states = cat.dump_states(str(f.path) for f in found)
    todo, skipped, skipped_failed = [], 0, 0
    for f in found:
        st = states.get(str(f.path))
        unchanged = False
        if st is not None and st.last_status is not None:
            if st.size == f.size and st.mtime_ns == f.mtime_ns:
                unchanged = True
            elif st.size == f.size and st.hash is not None:
                try:
                    h = content_hash(f.path, f.size, like=st.hash)
                except OSError:
                    h = None
                if h == st.hash:
                    if h is not None and not h.startswith(HASH_SCHEME):  # recorded by an older version: from now
                        with contextlib.suppress(OSError):  # on, the current scheme decides for this dump
                            h = content_hash(f.path, f.size)
                    cat.touch_dump(SourceState(str(f.path), f.size, f.mtime_ns, h))
                    unchanged = True
        retry = st is not None and st.last_status == "failed" and (retry_failed or st.last_transient)
        if unchanged and not retry:
            skipped += 1
            skipped_failed += st is not None and st.last_status == "failed"
            continue
        todo.append(f)
    return todo, skipped, skipped_failed


def _skip_records(
    cat: Catalog, seen: list[Skipped], host_of: Callable[[Path, Sequence[Path]], str | None], roots: list[Path]
) -> list[SkipRecord]:
    """The skipped files to record (one row per path; docs/scheduling.md): a path that has a result keeps
    showing it; a file older than ``--since`` that the catalog does not know yet has its signature read once
    (not a dump is the better reason), later runs reuse the stored reason while its size and mtime hold."""
    paths = [str(k.path) for k in seen]
    catalogued = cat.dump_states(paths)
    stored = cat.skip_states(paths)
    out = []
    for k in seen:
        key = str(k.path)
        if key in catalogued:
            continue
        reason, message = k.reason, k.message
        if reason == "older_than_since":
            old = stored.get(key)
            if old is not None and (old.size, old.mtime_ns) == (k.size, k.mtime_ns):
                if old.reason != "older_than_since":
                    reason, message = old.reason, old.message
            else:
                reason, message = dump_signature_problem(k.path) or (reason, message)
        out.append(SkipRecord(key, k.size, k.mtime_ns, reason, message, host_of(k.path, roots)))
    return out


@dataclass(slots=True)
class _Walk:
    """What the walk decided: the dumps to process (sorted), counts, skipped files recorded per reason."""

    todo: list[Found] = field(default_factory=list)
    found: int = 0
    unchanged: int = 0
    unchanged_failed: int = 0
    skipped_files: dict[str, int] = field(default_factory=dict)


SCAN_CHUNK = 500  # files looked up in the catalog (and skip rows written) per step of the walk


def _walk_and_select(cat: Catalog, opts: BatchOptions, out: Path, hosts: HostPattern, roots: list[Path]) -> _Walk:
    """Walk the sources chunk by chunk: each chunk's dumps are compared with the catalog (what is new), its
    skipped files recorded (one row per path, no run yet: :meth:`Catalog.claim_skips` gives them the run).
    Memory follows the chunk and the dumps to process, not the number of files on the share."""
    walk = _Walk()
    items = iter_scan(opts.sources, exclude=[out], since=opts.since)
    while chunk := list(itertools.islice(items, SCAN_CHUNK)):
        found = [x for x in chunk if isinstance(x, Found)]
        todo, unchanged, unchanged_failed = _select(cat, found, opts.retry_failed, opts.force)
        walk.todo += todo
        walk.found += len(found)
        walk.unchanged += unchanged
        walk.unchanged_failed += unchanged_failed
        skips = _skip_records(cat, [x for x in chunk if isinstance(x, Skipped)], hosts.host_of, roots)
        cat.record_skips(None, skips)
        for k in skips:
            walk.skipped_files[k.reason] = walk.skipped_files.get(k.reason, 0) + 1
    walk.todo.sort(key=lambda f: str(f.path))
    return walk


def _spec(f: Found, out: Path, opts: BatchOptions) -> TaskSpec:
    key = output_key(f.path)
    return TaskSpec(
        source=str(f.path),
        size=f.size,
        mtime_ns=f.mtime_ns,
        small_path=str(out / SMALL_DIR / f"{key}.mini.dmp") if opts.convert else None,
        report_dir=str(out / REPORTS_DIR) if opts.report else None,
        formats=opts.formats,
        engine=opts.engine,
        verify=opts.delete_source_after_verify,
        template_dirs=opts.template_dirs,
        symbol_path=opts.symbol_path,
        extra={"report_name": key},
    )


def _maybe_delete(cat: Catalog, spec: TaskSpec, rec: ResultRecord, summary: BatchSummary) -> None:
    """--delete-source-after-verify: delete only a verified, unchanged source; otherwise say why not."""
    src = spec.source
    if not rec.ok:
        summary.kept.append((src, f"processing failed ({rec.error_code})"))
        return
    if rec.small_path is None:
        summary.kept.append((src, "no small dump was written (the source is already small, or --no-convert)"))
        return
    if not rec.verified:
        summary.kept.append((src, f"verification failed: {rec.verify_note}"))
        return
    try:
        st = Path(src).stat()
    except OSError as exc:
        summary.kept.append((src, f"cannot stat before deleting: {exc}"))
        return
    if (st.st_size, st.st_mtime_ns) != (rec.source.size, rec.source.mtime_ns):
        summary.kept.append((src, "the source changed while it was processed"))
        return
    try:
        fs.unlink(src)  # retried while a scanner or a debugger still holds it (Windows)
    except OSError as exc:  # OutputBusyError included: this dump's source stays, the batch goes on
        summary.kept.append((src, f"cannot delete: {exc}"))
        log.warning("kept %s: cannot delete: %s", src, exc)
        return
    cat.mark_source_deleted(src)
    summary.deleted.append(src)
    log.info("deleted %s (%s)", src, rec.verify_note)


def write_index(
    cat: Catalog, out: Path, template_dirs: tuple[str, ...] = (), changes: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """index.html and index.csv over every dump in the catalog (failed ones too), from summary columns only;
    remembers which result the index covers (so a stale index is rebuilt by the next run)."""
    from dbgauto.report.fleet import write_fleet_index
    from dbgauto.report.render import ReportRenderer

    cat.prefetch()
    newest = cat.index_stamp()
    html, csv = write_fleet_index(
        ReportRenderer(template_dirs=list(template_dirs)),
        cat.summaries,
        out,
        buckets=cat.buckets(),
        bucket_days=cat.bucket_days(),
        changes=changes,
    )
    cat.set_meta(INDEX_META, newest)
    return Path(html), Path(csv)


def index_is_stale(cat: Catalog, out: Path) -> bool:
    """Is index.html/index.csv missing, or built before the catalog's newest result?"""
    if not (out / INDEX_HTML).exists() or not (out / INDEX_CSV).exists():
        return True
    return cat.get_meta(INDEX_META) != cat.index_stamp()


def _summary_doc(summary: BatchSummary, started: str) -> dict[str, Any]:
    return {
        "schema": "dbgauto.run_summary/1",
        "run_id": summary.run_id,
        "started": started,
        "found": summary.found,
        "skipped": summary.skipped,
        "skipped_files": summary.skipped_files,
        "succeeded": summary.succeeded,
        "failed": [
            {"source": r.source.path, "host": r.host, "error_code": r.error_code, "error_message": r.error_message}
            for r in summary.failures
        ],
        "changes": summary.changes,
        "index_html": str(summary.index_html) if summary.index_html else None,
    }


def _result_events(cat: Catalog, run_id: int) -> list[dict[str, Any]]:
    keys = ("path", "host", "status", "error_code", "crash_time", "bugcheck_name", "culprit", "bucket", "build")
    return [
        {k: r.get(k) for k in keys}
        for r in (
            dict(x)
            for x in cat.conn.execute(
                "SELECT d.path, r.host, r.status, r.error_code, r.crash_time, r.bugcheck_name, r.culprit, r.bucket,"
                " r.build FROM results AS r JOIN dumps AS d ON d.id = r.dump_id WHERE r.run_id = ? ORDER BY r.id",
                (run_id,),
            )
        )
    ]


def run_batch(opts: BatchOptions, progress: Progress | None = None) -> BatchSummary:
    """Run one batch; raises CatalogLockedError when another batch holds DIR and ``opts.wait`` is false."""
    from dbgauto.version import __version__

    if opts.scheduler is None:
        prestart_forkserver()  # the local pool's server loads while the checks, the lock and discovery run
    progress = progress or LogProgress()
    out = Path(opts.out_dir).resolve()
    _require(opts.convert, opts.report)
    for src in opts.sources:  # a usage error, before the lock and the catalog
        if not Path(src).exists():
            raise FileNotFoundError(f"{src}: no such file or folder")
    hosts = HostPattern(opts.host_from)
    roots = [Path(src).resolve() for src in opts.sources]
    runner_opts = RunnerOptions(
        jobs=opts.jobs,
        scheduler=opts.scheduler,
        engine=opts.engine,
        task_timeout=opts.task_timeout,
        max_tasks_per_child=opts.max_tasks_per_child,
    )
    with (
        batch_lock(out, wait=opts.wait, timeout=opts.wait_timeout),
        Catalog.open(out / CATALOG_NAME) as cat,
        TaskRunner(runner_opts) as runner,
    ):
        if cat.mark_interrupted_runs():
            log.info("an earlier run was interrupted; finishing what it left")
        clean_partials(out)
        walk_started = utc_now()
        walk = _walk_and_select(cat, opts, out, hosts, roots)
        todo, skipped = walk.todo, walk.unchanged
        if todo and runner.is_dask:
            runner.slots()  # connect now: an unreachable scheduler fails before a run is recorded
        run_id = cat.start_run(opts.to_json(), version=__version__)
        cat.claim_skips(run_id, walk_started)
        cat.set_run_counts(run_id, found=walk.found, skipped=skipped)
        summary = BatchSummary(run_id, out, cat.path, walk.found, skipped, walk.unchanged_failed)
        summary.skipped_files = dict(sorted(walk.skipped_files.items()))
        if walk.skipped_files:
            log.info(
                "run %d: %d file(s) seen and not processed: %s",
                run_id,
                sum(walk.skipped_files.values()),
                summary.skipped_files,
            )
        log.info("run %d: %d dump(s) found, %d unchanged, %d to process", run_id, walk.found, skipped, len(todo))

        started = cat.runs(1)[0]["started"]
        host_of = {str(f.path): hosts.host_of(f.path, roots) for f in todo}
        waiting: list[tuple[TaskSpec, ResultRecord]] = []
        first_wait = [0.0]

        def flush() -> None:
            """Commit the waiting records as one chunk, then act on them (delete sources, progress)."""
            if not waiting:
                return
            chunk = list(waiting)
            waiting.clear()
            cat.add_results(run_id, [rec for _, rec in chunk])
            for spec, rec in chunk:
                if rec.ok:
                    summary.succeeded += 1
                else:
                    summary.failures.append(rec)
                if opts.delete_source_after_verify:
                    _maybe_delete(cat, spec, rec, summary)
                progress.finished(spec, rec)

        def on_done(spec: TaskSpec, rec: ResultRecord) -> None:
            rec.host = host_of.get(spec.source)
            if not waiting:
                first_wait[0] = time.monotonic()
            waiting.append((spec, rec))
            if len(waiting) >= opts.commit_every:
                flush()

        def on_tick() -> None:
            if waiting and time.monotonic() - first_wait[0] >= opts.commit_seconds:
                flush()

        specs = [_spec(f, out, opts) for f in todo]
        status = "interrupted"
        try:
            if specs:
                progress.begin(len(specs))
                try:
                    runner.run(
                        specs,
                        run_task,
                        on_start=progress.started,
                        on_done=on_done,
                        on_tick=on_tick,
                        on_stage=getattr(progress, "stage", None),  # optional: older Progress objects lack it
                    )
                finally:
                    flush()
                    progress.end()
            cat.prefetch()  # the fleet queries below read every dump's summary row (Catalog.prefetch)
            cat.refresh_buckets()
            summary.changes = changes_since(cat.conn, started)
            if opts.report and (summary.processed or index_is_stale(cat, out)):
                summary.index_html, summary.index_csv = write_index(cat, out, opts.template_dirs, summary.changes)
            elif opts.report:
                summary.index_html, summary.index_csv = out / INDEX_HTML, out / INDEX_CSV
            summary.run_summary = out / RUN_SUMMARY
            doc = _summary_doc(summary, started)
            atomic_write_text(summary.run_summary, json.dumps(doc, indent=2, default=str) + "\n")
            status = "completed"
        finally:
            cat.finish_run(run_id, status=status)
        if opts.notify.any:
            summary.notify_problems = notify(opts.notify, doc, _result_events(cat, run_id))
        if opts.keep_days is not None:
            known = cat.paths_under(out)  # sources inside the output folder are never pruned
            summary.pruned = len(prune_outputs(out, (SMALL_DIR, REPORTS_DIR), opts.keep_days, sources=known))
    return summary
