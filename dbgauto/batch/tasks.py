"""The per-dump task that batch workers run: hash, header, convert, facts, reports, verify.

One engine session per dump: the file is opened once, hashed once and (native engine) its kernel walked once;
conversion and facts come from that session.

Why a plain function over plain records: it runs in a ProcessPoolExecutor worker or on a Dask worker on
another host, so its input (:class:`TaskSpec`) and output (:class:`ResultRecord`) are picklable dataclasses,
and it never touches the catalog. Every failure becomes a ``failed`` record with the stable error code
(``DbgautoError.code``); nothing escapes except a dying process, which the runner handles.

Fault injection for tests (and for rehearsing an outage): ``DBGAUTO_FAULT_INJECT="die:NAME,hang:NAME"``
makes the task for the source whose file name is NAME exit the worker process at once (``os._exit``) or
sleep forever, so the runner's recovery paths are tested against real processes; ``oserror:NAME`` raises an
I/O error (a transient failure, retried by the next run).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbgauto.analysis.facts import fingerprint, first_mib_digest
from dbgauto.catalog.records import HeaderFacts, ResultRecord, SourceState
from dbgauto.catalog.summary import pack_facts, summary_of
from dbgauto.errors import ConversionError, DbgautoError

__all__ = [
    "FAULT_ENV",
    "HASH_SCHEME",
    "TaskSpec",
    "compare_facts",
    "content_hash",
    "read_stage",
    "run_task",
    "run_tasks",
    "set_stage_dir",
    "stage_path",
]

log = logging.getLogger(__name__)

FAULT_ENV = "DBGAUTO_FAULT_INJECT"
HASH_SCHEME = "sha256-ht:"  # the content hash: head and tail of the file plus its size (facts.fingerprint)
LEGACY_HASH_SCHEME = "sha256-1m:"  # what catalogs before schema 4 recorded (the first MiB plus the size)
TRIAGE_DUMP_TYPE = 4

# Fact keys compared before a source may be deleted (CrashFacts.to_dict() names). A key present in the
# source's facts must be present and equal in the small dump's facts.
VERIFY_KEYS: tuple[str, ...] = (
    "machine",
    "os_build",
    "os_major",
    "product_type",
    "processors",
    "crash_time",
    "bugcheck",
    "culprit",
    "process_name",
    "pid",
    "tid",
    "drivers",
    "unloaded_drivers",
)
DRIVER_KEYS = ("name", "base", "size", "timestamp", "checksum", "start", "end")


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What to do with one source. Output paths are decided by the coordinator (unique per source)."""

    source: str
    size: int
    mtime_ns: int
    small_path: str | None = None  # convert to this path; None: no conversion
    report_dir: str | None = None  # write per-dump reports here; None: no reports
    formats: tuple[str, ...] = ("html", "json")
    engine: str = "native"
    verify: bool = False  # compare the small dump's facts with the source's (for --delete-source-after-verify)
    template_dirs: tuple[str, ...] = ()
    symbol_path: str | None = None  # --symbols; None: the environment's (DBGAUTO_SYMBOL_PATH, _NT_SYMBOL_PATH)
    extra: dict[str, Any] = field(default_factory=dict)


def content_hash(path: os.PathLike[str] | str, size: int | None = None, *, like: str | None = None) -> str:
    """``sha256-ht:<hex>``: the facts' identity hash (head and tail, then the size; cheap on 16 GiB dumps).
    ``like``: a hash recorded before; one in the older ``sha256-1m:`` scheme gets the file hashed that way, so
    that a dump recorded by an older version is still recognised as unchanged."""
    if like is not None and like.startswith(LEGACY_HASH_SCHEME):
        return LEGACY_HASH_SCHEME + first_mib_digest(path, size)
    return HASH_SCHEME + fingerprint(path, size)


def _inject_faults(source: str) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    name = Path(source).name
    for item in spec.split(","):
        action, _, target = item.strip().partition(":")
        if target != name:
            continue
        if action == "die":
            os._exit(70)
        if action == "hang":
            while True:
                time.sleep(3600)
        if action == "raise":
            raise RuntimeError(f"injected failure for {name}")
        if action == "oserror":  # a transient I/O failure (a share that dropped, a locked file)
            raise OSError(5, "Input/output error (injected)", source)


def header_record(dump: Any) -> HeaderFacts:
    """The catalog's per-dump header columns of an open KernelDump."""
    h = dump.header
    return HeaderFacts(
        is_64bit=dump.is_64bit,
        dump_type=int(dump.dump_type),
        machine=int(dump.machine) if dump.machine is not None else None,
        build=h.minor_version,
        bugcheck_code=h.bugcheck_code,
        bugcheck_parameters=tuple(h.bugcheck_parameters) if h.bugcheck_parameters else None,
        system_time=h.system_time.isoformat() if h.system_time else None,
    )


def _header_facts(path: str) -> HeaderFacts:
    """The header columns read from the file itself (a debugger session holds no KernelDump of ours)."""
    from dbgauto.kdump.reader import KernelDump

    with KernelDump.open(path) as dump:
        return header_record(dump)


_RENDERER: Any = None
_RENDERER_DIRS: tuple[str, ...] | None = None


def _renderer(template_dirs: tuple[str, ...]) -> Any:
    """One ReportRenderer (one jinja2 Environment) per worker process."""
    global _RENDERER, _RENDERER_DIRS
    if _RENDERER is None or template_dirs != _RENDERER_DIRS:
        from dbgauto.report.render import ReportRenderer

        _RENDERER = ReportRenderer(template_dirs=list(template_dirs))
        _RENDERER_DIRS = template_dirs
    return _RENDERER


UNLOADED_NAME_CHARS = 12  # a small dump keeps this much of an unloaded driver's name (DUMP_UNLOADED_DRIVERS)


def _norm_drivers(items: Any, *, unloaded: bool = False) -> list[tuple[Any, ...]]:
    rows = []
    for d in items or ():
        if isinstance(d, dict):
            row = dict(d)
            if unloaded and isinstance(row.get("name"), str):  # the format's own truncation is not a difference
                row["name"] = row["name"][:UNLOADED_NAME_CHARS]
            rows.append(tuple(row.get(k) for k in DRIVER_KEYS))
    return sorted(rows)


def compare_facts(source: dict[str, Any], small: dict[str, Any]) -> tuple[bool, str]:
    """Are the small dump's facts the source's (bugcheck, parameters, build, drivers, ...)? (equal, why)."""
    differences = []
    for key in VERIFY_KEYS:
        a, b = source.get(key), small.get(key)
        if a in (None, [], (), {}):
            continue
        if b in (None, [], (), {}):
            differences.append(f"{key} missing from the small dump")
            continue
        if key in ("drivers", "unloaded_drivers"):
            a, b = _norm_drivers(a, unloaded=key != "drivers"), _norm_drivers(b, unloaded=key != "drivers")
        elif key == "bugcheck" and isinstance(a, dict) and isinstance(b, dict):
            a = (a.get("code"), [p.get("value") for p in a.get("parameters", [])])
            b = (b.get("code"), [p.get("value") for p in b.get("parameters", [])])
        elif key == "culprit" and isinstance(a, dict) and isinstance(b, dict):
            a, b = (a.get("name"), a.get("base")), (b.get("name"), b.get("base"))
        if a != b:
            differences.append(f"{key} differ" if key.endswith("s") else f"{key} differs")
    if differences:
        return False, "; ".join(differences)
    return True, "small dump facts equal the source's (" + ", ".join(k for k in VERIFY_KEYS if k in source) + ")"


# Live stages: a local pool's workers write the stage each task is in to a small file per source in a folder the
# runner owns and polls (a file needs no lock, so a worker killed mid-write cannot block anyone; a Dask worker
# has no folder and reports nothing).
_STAGE_DIR: str | None = None


def set_stage_dir(path: str | None) -> None:
    global _STAGE_DIR
    _STAGE_DIR = path


def stage_path(stage_dir: str, source: str) -> Path:
    return Path(stage_dir) / (hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()[:20] + ".stage")


def read_stage(stage_dir: str, source: str) -> str | None:
    """The stage a worker last wrote for ``source``; None when none (yet) or unreadable."""
    try:
        text = stage_path(stage_dir, source).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.isalpha() else None


def _stage(spec: TaskSpec, name: str) -> None:
    if _STAGE_DIR is None:
        return
    chunk = current_chunk()
    if chunk is not None and chunk.size > 1:
        return  # a chunk of small dumps: run_tasks marks only which one is current (milliseconds each)
    with contextlib.suppress(OSError):
        stage_path(_STAGE_DIR, spec.source).write_text(name, encoding="ascii")


class _ChunkOutputs:
    """The report files of the tasks of one chunk: written as temp files as each task goes, published together
    when the chunk ends (one fsync pass, the renames, one folder fsync: :class:`OutputSet`), before any of
    their records leaves the worker. A kill mid-chunk leaves only temp files, removed by the next run."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sets: dict[str, Any] = {}  # folder -> OutputSet
        self.owners: list[tuple[ResultRecord, str, int]] = []  # (task, folder, mark before its files)

    def add(self, rec: ResultRecord, folder: str, files: list[tuple[str, bytes]]) -> list[Path]:
        from dbgauto.report.outputs import OutputSet

        out = self.sets.get(folder)
        if out is None:
            out = self.sets[folder] = OutputSet(folder, sync_early=self.size > 1).__enter__()
        mark = out.mark()
        try:
            paths = [out.add(name, data) for name, data in files]
        except BaseException:
            out.rollback(mark)
            raise
        self.owners.append((rec, folder, mark))
        return paths

    def drop(self, rec: ResultRecord) -> None:
        """A task failed after adding its reports: they are not published (added last, so rolled back)."""
        while self.owners and self.owners[-1][0] is rec:
            _, folder, mark = self.owners.pop()
            self.sets[folder].rollback(mark)

    def publish(self) -> None:
        """Publish every folder's files; a folder that fails fails the tasks whose reports were in it."""
        for folder, out in self.sets.items():
            try:
                out.commit()
            except (OSError, DbgautoError) as exc:
                code = exc.code if isinstance(exc, DbgautoError) else "os_error"
                for rec, where, _ in self.owners:
                    if where == folder and rec.status == "ok":
                        rec.status, rec.error_code = "failed", code
                        rec.error_message = f"{rec.source.path}: reports not published: {exc}"
                        rec.report_paths.clear()
        self.sets.clear()
        self.owners.clear()

    def abort(self) -> None:
        for out in self.sets.values():
            out.abort()
        self.sets.clear()
        self.owners.clear()


# The chunk the current thread runs in: thread-local, since a Dask worker (or an in-process cluster) runs tasks
# in threads of one process, each its own chunk of one.
_THREAD = threading.local()


def current_chunk() -> _ChunkOutputs | None:
    """The chunk this thread's task runs in (None outside :func:`run_tasks`)."""
    chunk: _ChunkOutputs | None = getattr(_THREAD, "chunk", None)
    return chunk


def run_tasks(specs: Sequence[TaskSpec], fn: Callable[[TaskSpec], ResultRecord] | None = None) -> list[ResultRecord]:
    """Run ``fn`` (default :func:`run_task`) over a chunk of sources in this process: one record per spec, in
    order; their report files are published together at the end (one durability point per chunk), before the
    records are returned, so a record never names a report that is not durable."""
    if current_chunk() is not None:  # nested: the outer chunk publishes
        return [(fn or run_task)(spec) for spec in specs]
    chunk = _THREAD.chunk = _ChunkOutputs(len(specs))
    recs = []
    try:
        for spec in specs:
            if chunk.size > 1 and _STAGE_DIR is not None:  # the runner's timeout and death handling read this
                with contextlib.suppress(OSError):
                    stage_path(_STAGE_DIR, spec.source).write_text("started", encoding="ascii")
            recs.append((fn or run_task)(spec))
    except BaseException:
        _THREAD.chunk = None
        chunk.abort()
        raise
    _THREAD.chunk = None
    chunk.publish()
    return recs


def run_task(spec: TaskSpec) -> ResultRecord:
    """Process one source; always returns a record (``failed`` with a code when anything goes wrong). Outside a
    chunk (:func:`run_tasks`) its reports are published before it returns."""
    chunk = current_chunk()
    if chunk is None:
        return run_tasks((spec,))[0]
    t0 = time.perf_counter()
    state = SourceState(spec.source, spec.size, spec.mtime_ns)
    rec = ResultRecord(source=state, status="failed", engine=spec.engine)
    try:
        _stage(spec, "hash")
        _inject_faults(spec.source)
        st = Path(spec.source).stat()
        digest = fingerprint(spec.source, st.st_size)
        state = SourceState(spec.source, st.st_size, st.st_mtime_ns, HASH_SCHEME + digest)
        rec.source = state
        _process(spec, rec, digest)
        rec.status = "ok"
    except DbgautoError as exc:
        rec.error_code, rec.error_message = exc.code, str(exc)
    except FileNotFoundError as exc:
        rec.error_code, rec.error_message = "not_found", f"{spec.source}: {exc.strerror or exc}"
    except OSError as exc:
        rec.error_code, rec.error_message = "os_error", f"{spec.source}: {exc}"
    except Exception as exc:  # a bug in a lower layer must fail one dump, not the batch
        log.exception("internal error on %s", spec.source)
        rec.error_code, rec.error_message = "internal", f"{spec.source}: {type(exc).__name__}: {exc}"
    if rec.status != "ok":
        chunk.drop(rec)
        rec.report_paths.clear()
    rec.total_seconds = time.perf_counter() - t0
    return rec


def _process(spec: TaskSpec, rec: ResultRecord, digest: str) -> None:
    from dbgauto.engines.jobs import open_session, session_facts, write_from_session

    src = spec.source
    conversion_error: ConversionError | None = None
    with open_session(src, spec.engine, digest=digest, symbol_path=spec.symbol_path) as session:
        dump = getattr(session, "dump", None)  # a native session's open KernelDump
        rec.header = header_record(dump) if dump is not None else _header_facts(src)
        if spec.small_path is not None:
            if rec.header.dump_type == TRIAGE_DUMP_TYPE:
                rec.warnings.append("already a small memory dump: not converted")
            else:
                t = time.perf_counter()
                _stage(spec, "convert")
                try:
                    res = write_from_session(session, Path(spec.small_path), overwrite=True)
                except ConversionError as exc:
                    # The dump reads but lacks what a small dump needs: still report on it (the index covers it),
                    # then fail it with the conversion's reason.
                    conversion_error = exc
                else:
                    rec.small_path, rec.small_size = str(res.output), res.size
                    rec.engine, rec.debugger_version = res.engine, res.debugger_version
                    rec.warnings.extend(f"convert: {w}" for w in res.warnings)
                rec.convert_seconds = time.perf_counter() - t
        if spec.report_dir is not None or spec.verify:
            try:
                t = time.perf_counter()
                _stage(spec, "facts")
                facts = session_facts(session, digest=digest)
                rec.facts_seconds = time.perf_counter() - t
            except DbgautoError:
                if conversion_error is None:
                    raise
            else:
                _reports_and_verify(spec, rec, facts)
    if conversion_error is not None:
        raise conversion_error


def _reports_and_verify(spec: TaskSpec, rec: ResultRecord, facts: Any) -> None:
    rec.facts = facts.to_dict()  # once: the JSON report, the summary and the catalog's packed facts share it
    rec.engine = getattr(facts, "engine", None) or rec.engine
    rec.debugger_version = rec.debugger_version or getattr(facts, "engine_version", None)
    if spec.verify and rec.small_path is not None:
        from dbgauto.engines.jobs import facts_from_dump

        small = facts_from_dump(rec.small_path, engine=spec.engine, symbol_path=spec.symbol_path)
        rec.verified, rec.verify_note = compare_facts(rec.facts, small.to_dict())
    elif spec.verify:
        rec.verified, rec.verify_note = False, "no small dump was written for this source"
    if spec.report_dir is not None:
        t = time.perf_counter()
        _stage(spec, "report")
        renderer = _renderer(spec.template_dirs)
        name = spec.extra.get("report_name")
        files = [renderer.dump_report_file(facts, fmt, name=name, facts_dict=rec.facts) for fmt in spec.formats]
        chunk = current_chunk()
        if files and chunk is not None:  # run_task always runs inside a chunk
            paths = chunk.add(rec, spec.report_dir, files)
            rec.report_paths.update(zip(spec.formats, (str(p) for p in paths), strict=True))
        rec.report_seconds = time.perf_counter() - t
    # a small record back to the coordinator: summary columns and the facts already packed for the catalog
    rec.summary, rec.packed, rec.facts = summary_of(rec.facts), pack_facts(rec.facts), None
