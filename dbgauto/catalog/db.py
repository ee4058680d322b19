"""The batch catalog: one SQLite file per output folder (``DIR/dbgauto.sqlite``).

Why this shape: stdlib ``sqlite3`` in WAL mode, so ``dbgauto catalog list`` can read while a batch writes;
``isolation_level=None`` with explicit ``BEGIN IMMEDIATE``/``COMMIT`` (Python 3.11 has no
``Connection.autocommit``), so every write is one short transaction and a killed process leaves either the
whole row or nothing. The schema is versioned by ``PRAGMA user_version``: ``schema.sql`` is migration 1,
later migrations append to :data:`MIGRATIONS`. Only the coordinating batch process writes.

Schema 2 (fleet scale): a result carries summary columns (time, bug check, culprit, bucket, build, machine,
process, host, warnings count) written when it is recorded; its facts are stored zlib-compressed without the
driver list, which lives once per distinct list in ``driver_sets``; ``dumps.latest_result_id`` points at the
newest result; ``buckets`` is kept current per committed chunk. Results arrive in chunks
(:meth:`Catalog.add_results`): one transaction, one durability point per chunk. A write that fails (disk
full, I/O error) raises :class:`CatalogWriteError` naming the catalog, never a bare sqlite3 error.

Network folders: WAL needs shared memory that SMB/NFS cannot provide, so a catalog on a network share
(a UNC ``--out``, a mapped network drive, an NFS/CIFS mount; :func:`dbgauto.util.paths.is_network_path`)
uses the rollback journal (``journal_mode = DELETE``): readers then wait for a write instead of reading
beside it. Read-only opens use :func:`dbgauto.util.paths.sqlite_uri` (``Path.as_uri()`` of a UNC path has
an authority SQLite refuses).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import os
import socket
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

from dbgauto.catalog.records import DumpState, ResultRecord, SkipRecord, SourceState, is_transient
from dbgauto.catalog.summary import StoredFacts, Summary, pack_facts, summary_of, unpack_facts
from dbgauto.errors import CatalogError, CatalogWriteError
from dbgauto.util.paths import is_network_path, sqlite_uri

__all__ = ["CATALOG_NAME", "MIGRATIONS", "SCHEMA_VERSION", "Catalog", "utc_now"]

log = logging.getLogger(__name__)

CATALOG_NAME = "dbgauto.sqlite"
BUCKETS_META = "buckets_result_id"  # the newest result id the buckets table covers


def _schema_v1() -> str:
    return resources.files("dbgauto.catalog").joinpath("schema.sql").read_text(encoding="utf-8")


def _schema_v2() -> str:
    return resources.files("dbgauto.catalog").joinpath("schema_v2.sql").read_text(encoding="utf-8")


def _schema_v3() -> str:
    return resources.files("dbgauto.catalog").joinpath("schema_v3.sql").read_text(encoding="utf-8")


def _schema_v4() -> str:
    return resources.files("dbgauto.catalog").joinpath("schema_v4.sql").read_text(encoding="utf-8")


# Migration n (1-based) brings user_version from n-1 to n. Append; never edit a released one.
MIGRATIONS: tuple[Any, ...] = (_schema_v1, _schema_v2, _schema_v3, _schema_v4)
SCHEMA_VERSION = len(MIGRATIONS)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


# A dump's row with its latest result (the skip rule needs both).
_STATE_QUERY: Final = (
    "SELECT d.id, d.path, d.size, d.mtime_ns, d.hash, d.source_deleted,"
    " r.status, r.error_code, r.size AS rsize, r.mtime_ns AS rmtime, r.hash AS rhash, r.transient"
    " FROM dumps AS d LEFT JOIN results AS r ON r.id = d.latest_result_id"
)


def _dump_state(row: sqlite3.Row) -> DumpState:
    return DumpState(
        dump_id=row["id"],
        path=row["path"],
        size=row["size"],
        mtime_ns=row["mtime_ns"],
        hash=row["hash"],
        last_status=row["status"],
        last_error_code=row["error_code"],
        last_result_size=row["rsize"],
        last_result_mtime_ns=row["rmtime"],
        last_result_hash=row["rhash"],
        source_deleted=row["source_deleted"],
        last_transient=bool(row["transient"]),
    )


# Catalogs up to this size are read once ahead of the fleet queries (:meth:`Catalog.prefetch`); a larger one
# would not stay in the cache of a machine of ordinary memory anyway.
PREFETCH_MAX: Final = 2 << 30
PREFETCH_BLOCK: Final = 1 << 20

LOOKUP_CHUNK: Final = 500  # paths per IN (...) lookup (SQLite's default limit is 32,766 variables)

# The index's columns, straight from the tables (the `latest` view also joins the facts, which the index
# never reads); ``path`` is the second column (the merge with the skips keys on it).
_SUMMARY_COLUMNS: Final = (
    "d.id AS dump_id, d.path, d.size AS dump_size, r.status, r.error_code, r.error_message, r.transient, r.host,"
    " r.crash_time, coalesce(r.bugcheck_code, d.bugcheck_code) AS bugcheck_code, r.bugcheck_name, r.parameters,"
    " r.culprit, r.bucket, coalesce(r.build, d.build) AS build, r.machine_name, r.process, r.engine,"
    " r.warnings_count, r.report_paths, r.small_path, r.finished, r.run_id"
)
_SUMMARY_FROM: Final = "FROM dumps AS d JOIN results AS r ON r.id = d.latest_result_id"


def _chunks(items: Iterable[str]) -> Iterator[tuple[str, ...]]:
    it = iter(items)
    while part := tuple(itertools.islice(it, LOOKUP_CHUNK)):
        yield part


class Catalog:
    """An open catalog. Use :meth:`open`; close it (or use it as a context manager)."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.root = path.parent
        self.conn = conn
        self._root_resolved: Path | None = None
        self._dirty_buckets: set[str] = set()
        self._buckets_fresh: bool | None = None
        self._prefetched = False

    # ---------------------------------------------------------------- opening and migrations
    @classmethod
    def open(cls, path: os.PathLike[str] | str, *, readonly: bool = False, network: bool | None = None) -> Catalog:
        """Open (creating and migrating unless ``readonly``) the catalog at ``path``.

        ``network``: the folder is a network share (None: detect); decides the journal mode (module doc).

        Raises :class:`CatalogError` naming the file for a corrupt file, a schema newer than this dbgauto,
        or a missing catalog opened read-only.
        """
        path = Path(path)
        if readonly and not path.exists():
            raise CatalogError(f"{path}: no catalog here (run `dbgauto batch ... --out {path.parent}` first)")
        try:
            if readonly:
                conn = sqlite3.connect(sqlite_uri(path.resolve(), mode="ro"), uri=True, isolation_level=None)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA cache_size = -16000")  # 16 MB: the summary rows of ~100k dumps stay cached
            if not readonly:
                remote = is_network_path(path.resolve()) if network is None else network
                mode = "DELETE" if remote else "WAL"
                try:
                    got = conn.execute(f"PRAGMA journal_mode = {mode}").fetchone()[0]
                except sqlite3.OperationalError as exc:  # another process holds it in the other mode
                    got = f"its mode, {exc}"
                if str(got).upper() != mode:
                    conn.close()
                    why = "a network folder needs it: close the other programs using the catalog" if remote else ""
                    raise CatalogError(f"{path}: SQLite cannot use journal mode {mode} here (it kept {got}); {why}")
                conn.execute("PRAGMA synchronous = NORMAL")
            catalog = cls(path, conn)
            catalog._migrate(readonly=readonly)
        except sqlite3.DatabaseError as exc:
            raise CatalogError(
                f"{path}: not a usable dbgauto catalog ({exc}); it was left as it is — move it aside to start "
                "a new catalog, or restore it from a backup"
            ) from exc
        return catalog

    @property
    def user_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self, *, readonly: bool) -> None:
        version = self.user_version
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path}: catalog schema version {version} is newer than this dbgauto knows "
                f"({SCHEMA_VERSION}); upgrade dbgauto"
            )
        if version == SCHEMA_VERSION:
            return
        if readonly:
            raise CatalogError(f"{self.path}: catalog schema version {version} needs a migration; open it writable")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            script = MIGRATIONS[target - 1]()
            log.info("catalog %s: migrating schema to version %d", self.path, target)
            try:
                # executescript commits any open transaction first; the script opens the transaction that
                # the Python half of the migration (the backfill) and the version bump then share.
                self.conn.executescript(f"BEGIN IMMEDIATE;\n{script}")
                if target == 2:
                    self._backfill_v2()
                self.conn.execute(f"PRAGMA user_version = {target}")
                self.conn.execute("COMMIT")
            except sqlite3.Error:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    def _backfill_v2(self) -> None:
        """Migration 2, in place: summary columns and packed facts for every old result; latest pointers;
        the buckets table. Runs inside the migration's transaction (all or nothing)."""
        c = self.conn
        for row in c.execute("SELECT id, facts, warnings FROM results WHERE facts IS NOT NULL").fetchall():
            facts = json.loads(row["facts"])
            warnings = json.loads(row["warnings"] or "[]")
            n = len(warnings) if isinstance(warnings, list) else 0
            # the schema-2 layout (no driver_bases column until migration 4): the list kept whole
            self._store_packed(c, row["id"], summary_of(facts), pack_facts(facts, split_bases=False), n)
        c.execute("UPDATE results SET warnings_count = 0 WHERE warnings_count IS NULL")
        c.execute("UPDATE results SET host = (SELECT host FROM dumps WHERE dumps.id = results.dump_id)")
        c.execute(
            "UPDATE results SET transient = 1 WHERE status = 'failed' AND error_code IN ('os_error', 'not_found')"
        )
        c.execute("UPDATE dumps SET latest_result_id = (SELECT max(id) FROM results WHERE dump_id = dumps.id)")
        self._refresh_buckets(c, None)
        c.execute(
            "INSERT INTO meta (key, value) VALUES (?, (SELECT coalesce(max(id), 0) FROM results))", (BUCKETS_META,)
        )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT, rolled back on any exception.

        A failing write (disk full, read-only file system, I/O error) becomes :class:`CatalogWriteError`."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise CatalogWriteError(f"{self.path}: cannot write the catalog: {exc}") from exc

    def prefetch(self) -> int:
        """Read the catalog file and its WAL once, front to back, into the OS cache (once per open catalog, at
        most :data:`PREFETCH_MAX` bytes); returns the bytes read. Never fails: it only makes what follows faster.

        Why: the fleet queries (the index, what changed, export) read every dump's summary row, and those rows'
        pages are spread thinly through the file (each table grows chunk by chunk, interleaved with the
        compressed facts: a ``results`` page is about every 7th page) and are visited in path order. On a cold
        cache that is one 4 KiB disk read per page, no readahead: ~22,000 reads at 100,000 dumps (92 s on a
        slow disk, docs/performance.md). Read in order, the whole file is a few dozen large reads."""
        if self._prefetched:
            return 0
        self._prefetched = True
        total = 0
        buf = bytearray(PREFETCH_BLOCK)
        for path in (self.path, Path(f"{self.path}-wal")):
            try:
                with open(path, "rb", buffering=0) as fh:
                    left = min(os.fstat(fh.fileno()).st_size, PREFETCH_MAX - total)
                    while left > 0:
                        n = fh.readinto(buf)
                        if not n:
                            break
                        left -= n
                        total += n
            except OSError as exc:  # no WAL, or a file we may not read ahead: the queries read it themselves
                log.debug("catalog %s: no read-ahead of %s (%s)", self.path, path, exc)
        return total

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: "ok" when the file is sound."""
        return "; ".join(row[0] for row in self.conn.execute("PRAGMA integrity_check"))

    # ---------------------------------------------------------------- paths
    def relative(self, path: str | None) -> str | None:
        """An output path as stored: relative to the catalog folder when inside it."""
        if path is None:
            return None
        if self._root_resolved is None:
            self._root_resolved = self.root.resolve()
        p = Path(path)
        try:  # outputs are made under the resolved root: resolve (a syscall per component) only if not
            return p.relative_to(self._root_resolved).as_posix()
        except ValueError:
            pass
        try:
            return p.resolve().relative_to(self._root_resolved).as_posix()
        except ValueError:
            return str(path)

    def absolute(self, stored: str | None) -> Path | None:
        if stored is None:
            return None
        p = Path(stored)
        return p if p.is_absolute() else self.root / p

    # ---------------------------------------------------------------- runs
    def start_run(self, options: dict[str, Any], *, version: str | None = None) -> int:
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO runs (started, options, host, pid, version) VALUES (?, ?, ?, ?, ?)",
                (utc_now(), _json(options), socket.gethostname(), os.getpid(), version),
            )
            return int(cur.lastrowid or 0)

    def set_run_counts(self, run_id: int, **counts: int) -> None:
        allowed = {"found", "skipped", "succeeded", "failed"}
        if not counts or set(counts) - allowed:
            raise ValueError(f"counts must be among {sorted(allowed)}")
        cols = ", ".join(f"{k} = ?" for k in counts)
        with self.transaction() as c:
            c.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*counts.values(), run_id))

    def finish_run(self, run_id: int, *, status: str = "completed") -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET ended = ?, status = ?,"
                " succeeded = (SELECT count(*) FROM results WHERE run_id = ? AND status = 'ok'),"
                " failed = (SELECT count(*) FROM results WHERE run_id = ? AND status = 'failed')"
                " WHERE id = ?",
                (utc_now(), status, run_id, run_id, run_id),
            )

    def mark_interrupted_runs(self) -> int:
        """Runs still 'running' when a new run holds the lock were killed: mark them 'interrupted'."""
        with self.transaction() as c:
            cur = c.execute(
                "UPDATE runs SET status = 'interrupted',"
                " succeeded = (SELECT count(*) FROM results WHERE run_id = runs.id AND status = 'ok'),"
                " failed = (SELECT count(*) FROM results WHERE run_id = runs.id AND status = 'failed')"
                " WHERE status = 'running'"
            )
            return cur.rowcount

    def runs(self, limit: int | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM runs ORDER BY id DESC"
        return list(self.conn.execute(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ()))

    # ---------------------------------------------------------------- dumps and results
    def dump_state(self, path: str) -> DumpState | None:
        row = self.conn.execute(f"{_STATE_QUERY} WHERE d.path = ?", (path,)).fetchone()
        return None if row is None else _dump_state(row)

    def all_dump_states(self) -> dict[str, DumpState]:
        """Every known path's state in one query (tests and tools; a batch asks for its paths only)."""
        return {row["path"]: _dump_state(row) for row in self.conn.execute(_STATE_QUERY)}

    def dump_states(self, paths: Iterable[str]) -> dict[str, DumpState]:
        """The states of these paths that the catalog knows, looked up :data:`LOOKUP_CHUNK` at a time: memory
        follows the files a run found, not the size of the catalog."""
        out: dict[str, DumpState] = {}
        for part in _chunks(paths):
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(f"{_STATE_QUERY} WHERE d.path IN ({marks})", part):
                out[row["path"]] = _dump_state(row)
        return out

    # ---------------------------------------------------------------- skipped files
    def claim_skips(self, run_id: int, since: str) -> None:
        """Give the skip rows seen at or after ``since`` (this run's walk) the run's id."""
        with self.transaction() as c:
            c.execute("UPDATE skips SET run_id = ? WHERE last_seen >= ?", (run_id, since))

    def paths_under(self, folder: os.PathLike[str] | str) -> set[str]:
        """Source paths (dumps and skipped files) inside ``folder`` as given or resolved: few, whatever the
        catalog's size (retention must never delete a source that lives in the output folder)."""
        out: set[str] = set()
        for prefix in {str(Path(folder)), str(Path(folder).resolve())}:
            for table in ("dumps", "skips"):
                out.update(
                    r[0]
                    for r in self.conn.execute(
                        f"SELECT path FROM {table} WHERE substr(path, 1, ?) = ?", (len(prefix), prefix)
                    )
                )
        return out

    def skip_states(self, paths: Iterable[str]) -> dict[str, SkipRecord]:
        """The skip rows of these paths (as recorded; ``host`` included)."""
        out: dict[str, SkipRecord] = {}
        for part in _chunks(paths):
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(
                f"SELECT path, size, mtime_ns, reason, message, host FROM skips WHERE path IN ({marks})", part
            ):
                out[row["path"]] = SkipRecord(*row)
        return out

    def record_skips(self, run_id: int | None, skips: Sequence[SkipRecord]) -> None:
        """Upsert one row per skipped path (one transaction): a path skipped every night keeps one row, its
        ``last_seen`` and ``run_id`` moved on. Paths that have a result are not touched (they show it).
        ``run_id`` None: the walk runs before its run exists; :meth:`claim_skips` sets it then."""
        if not skips:
            return
        now = utc_now()
        with self.transaction() as c:
            generation = int(c.execute("SELECT coalesce(max(changed), 0) + 1 FROM skips").fetchone()[0])
            c.executemany(
                "INSERT INTO skips (path, reason, message, size, mtime_ns, host, first_seen, last_seen, changed,"
                " run_id) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?9, ?8 WHERE NOT EXISTS"
                " (SELECT 1 FROM dumps WHERE path = ?1 AND latest_result_id IS NOT NULL)"
                " ON CONFLICT(path) DO UPDATE SET changed = CASE WHEN (reason, message, size, mtime_ns, host)"
                " IS NOT (excluded.reason, excluded.message, excluded.size, excluded.mtime_ns, excluded.host)"
                " THEN excluded.changed ELSE changed END,"
                " reason = excluded.reason, message = excluded.message, size = excluded.size,"
                " mtime_ns = excluded.mtime_ns, host = excluded.host, last_seen = excluded.last_seen,"
                " run_id = excluded.run_id",
                [(k.path, k.reason, k.message, k.size, k.mtime_ns, k.host, now, run_id, generation) for k in skips],
            )

    def touch_dump(self, source: SourceState) -> None:
        """Same content seen with a new mtime (hash matched): remember the new size/mtime, keep the results."""
        with self.transaction() as c:
            c.execute(
                "UPDATE dumps SET size = ?, mtime_ns = ?, hash = coalesce(?, hash), last_seen = ? WHERE path = ?",
                (source.size, source.mtime_ns, source.hash, utc_now(), source.path),
            )

    def _upsert_dump(self, c: sqlite3.Connection, rec: ResultRecord, now: str) -> int:
        h = rec.header
        params = list(h.bugcheck_parameters) if h.bugcheck_parameters is not None else None
        c.execute(
            "INSERT INTO dumps (path, size, mtime_ns, hash, is_64bit, dump_type, machine, build, bugcheck_code,"
            " bugcheck_parameters, system_time, first_seen, last_seen, host) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " hash = coalesce(excluded.hash, hash), is_64bit = coalesce(excluded.is_64bit, is_64bit),"
            " dump_type = coalesce(excluded.dump_type, dump_type), machine = coalesce(excluded.machine, machine),"
            " build = coalesce(excluded.build, build), bugcheck_code = coalesce(excluded.bugcheck_code, bugcheck_code),"
            " bugcheck_parameters = coalesce(excluded.bugcheck_parameters, bugcheck_parameters),"
            " system_time = coalesce(excluded.system_time, system_time), last_seen = excluded.last_seen,"
            " host = coalesce(excluded.host, host)",
            (
                rec.source.path,
                rec.source.size,
                rec.source.mtime_ns,
                rec.source.hash,
                None if h.is_64bit is None else int(h.is_64bit),
                h.dump_type,
                h.machine,
                h.build,
                h.bugcheck_code,
                _json(params),
                h.system_time,
                now,
                now,
                rec.host,
            ),
        )
        return int(c.execute("SELECT id FROM dumps WHERE path = ?", (rec.source.path,)).fetchone()[0])

    def add_result(self, run_id: int, rec: ResultRecord) -> int:
        """Record one dump's outcome (and its dump row) in one transaction; returns the result id."""
        return self.add_results(run_id, [rec])[0]

    def add_results(self, run_id: int, recs: Sequence[ResultRecord]) -> list[int]:
        """Record a chunk of outcomes in one transaction (one durability point); returns the result ids."""
        if not recs:
            return []
        now = utc_now()
        if self._buckets_fresh is None:  # were the buckets current before this process wrote anything?
            self._buckets_fresh = self.get_meta(BUCKETS_META) == str(self.max_result_id())
        with self.transaction() as c:
            ids = [self._insert_result(c, run_id, rec, now) for rec in recs]
            dirty = {r["bucket"] for r in self._summaries(c, ids) if r["bucket"]}
        self._dirty_buckets |= dirty
        return ids

    def refresh_buckets(self) -> None:
        """Bring the ``buckets`` table up to date: the buckets this process recorded into, or all of them when
        the table was stale before (a run killed before its refresh). Once per run, not per chunk: at 100k
        dumps a per-chunk refresh cost more than recording."""
        fresh = self._buckets_fresh
        if fresh is None:
            fresh = self.get_meta(BUCKETS_META) == str(self.max_result_id())
            if fresh:
                return
        with self.transaction() as c:
            self._refresh_buckets(c, set(self._dirty_buckets) if fresh else None)
            newest = str(c.execute("SELECT coalesce(max(id), 0) FROM results").fetchone()[0])
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (BUCKETS_META, newest),
            )
        self._dirty_buckets.clear()
        self._buckets_fresh = True

    def _insert_result(self, c: sqlite3.Connection, run_id: int, rec: ResultRecord, now: str) -> int:
        dump_id = self._upsert_dump(c, rec, now)
        reports = {fmt: self.relative(p) for fmt, p in rec.report_paths.items()}
        cur = c.execute(
            "INSERT INTO results (run_id, dump_id, status, error_code, error_message, size, mtime_ns, hash,"
            " small_path, small_size, report_paths, engine, debugger_version, convert_seconds,"
            " facts_seconds, report_seconds, total_seconds, warnings, verified, verify_note, finished, host,"
            " transient, warnings_count) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                dump_id,
                rec.status,
                rec.error_code,
                rec.error_message,
                rec.source.size,
                rec.source.mtime_ns,
                rec.source.hash,
                self.relative(rec.small_path),
                rec.small_size,
                _json(reports),
                rec.engine,
                rec.debugger_version,
                rec.convert_seconds,
                rec.facts_seconds,
                rec.report_seconds,
                rec.total_seconds,
                _json(rec.warnings),
                None if rec.verified is None else int(rec.verified),
                rec.verify_note,
                now,
                rec.host,
                int(is_transient(rec.status, rec.error_code)),
                len(rec.warnings),
            ),
        )
        result_id = int(cur.lastrowid or 0)
        if rec.packed is not None and rec.summary is not None:
            self._store_packed(c, result_id, rec.summary, rec.packed, len(rec.warnings))
        elif rec.facts is not None:
            self._store_facts(c, result_id, rec.facts, len(rec.warnings))
        c.execute("UPDATE dumps SET latest_result_id = ? WHERE id = ?", (result_id, dump_id))
        c.execute("DELETE FROM skips WHERE path = ?", (rec.source.path,))  # it has a result now
        return result_id

    def _store_facts(self, c: sqlite3.Connection, result_id: int, facts: dict[str, Any], warnings: int) -> None:
        """Summary columns + packed facts of one result (its driver list stored once, referenced)."""
        self._store_packed(c, result_id, summary_of(facts), pack_facts(facts), warnings)

    def _store_packed(
        self, c: sqlite3.Connection, result_id: int, s: Summary, packed: StoredFacts, warnings: int
    ) -> None:
        set_id = None
        if packed.drivers_digest is not None:
            c.execute(
                "INSERT OR IGNORE INTO driver_sets (digest, drivers) VALUES (?, ?)",
                (packed.drivers_digest, packed.drivers_z),
            )
            set_id = c.execute("SELECT id FROM driver_sets WHERE digest = ?", (packed.drivers_digest,)).fetchone()[0]
        c.execute(
            "UPDATE results SET facts = NULL, crash_time = ?, bugcheck_code = ?, bugcheck_name = ?, parameters = ?,"
            " culprit = ?, culprit_timestamp = ?, bucket = ?, build = ?, machine_name = ?, process = ?,"
            " warnings_count = ? WHERE id = ?",
            (
                s.crash_time,
                s.bugcheck_code,
                s.bugcheck_name,
                s.parameters,
                s.culprit,
                s.culprit_timestamp,
                s.bucket,
                s.build,
                s.machine_name,
                s.process,
                s.warnings_count + warnings,
                result_id,
            ),
        )
        if packed.bases_z is None:  # (also what migration 2 writes, before the column exists)
            c.execute(
                "INSERT OR REPLACE INTO result_facts (result_id, facts_z, driver_set_id) VALUES (?, ?, ?)",
                (result_id, packed.facts_z, set_id),
            )
        else:
            c.execute(
                "INSERT OR REPLACE INTO result_facts (result_id, facts_z, driver_set_id, driver_bases)"
                " VALUES (?, ?, ?, ?)",
                (result_id, packed.facts_z, set_id, packed.bases_z),
            )

    def _summaries(self, c: sqlite3.Connection, ids: Sequence[int]) -> list[sqlite3.Row]:
        marks = ",".join("?" * len(ids))
        return list(c.execute(f"SELECT bucket FROM results WHERE id IN ({marks})", tuple(ids)))

    def _refresh_buckets(self, c: sqlite3.Connection, buckets: set[str] | None) -> None:
        """Recompute the rows of ``buckets`` (None: all) from every dump's newest ok result."""
        where = "r.status = 'ok' AND r.bucket IS NOT NULL"
        args: tuple[Any, ...] = ()
        if buckets is not None:
            if not buckets:
                return
            where += f" AND r.bucket IN ({','.join('?' * len(buckets))})"
            args = tuple(sorted(buckets))
        if buckets is None:
            c.execute("DELETE FROM buckets")
        rows = c.execute(
            "SELECT r.bucket, max(r.bugcheck_code), max(r.bugcheck_name), max(r.culprit), min(r.crash_time),"
            " max(r.crash_time), count(*), count(DISTINCT r.host), group_concat(DISTINCT r.build),"
            " group_concat(DISTINCT printf('0x%x', r.culprit_timestamp)), min(r.run_id), max(r.run_id)"
            f" FROM dumps AS d JOIN results AS r ON r.id = d.latest_result_id WHERE {where} GROUP BY r.bucket",
            args,
        ).fetchall()
        for row in rows:
            values = tuple(row)
            c.execute(
                "INSERT INTO buckets (bucket, bugcheck_code, bugcheck_name, culprit, first_seen, last_seen, count,"
                " hosts, builds, culprit_timestamps, first_run, last_run) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(bucket) DO UPDATE SET bugcheck_code = excluded.bugcheck_code,"
                " bugcheck_name = excluded.bugcheck_name, culprit = excluded.culprit,"
                " first_seen = excluded.first_seen, last_seen = excluded.last_seen, count = excluded.count,"
                " hosts = excluded.hosts, builds = excluded.builds, culprit_timestamps = excluded.culprit_timestamps,"
                " first_run = min(buckets.first_run, excluded.first_run), last_run = excluded.last_run",
                values,
            )

    def mark_source_deleted(self, path: str) -> None:
        with self.transaction() as c:
            c.execute("UPDATE dumps SET source_deleted = ? WHERE path = ?", (utc_now(), path))

    def latest(self, *, status: str | None = None, facts: bool = True) -> list[dict[str, Any]]:
        """The newest result of every dump (optionally only 'ok' or 'failed'), ordered by path.

        With ``facts`` each row's ``facts`` is the facts JSON text as recorded (unpacked); without, the row
        has only the summary columns (what the index and listings need; no facts are decompressed)."""
        sql = "SELECT * FROM latest" + (" WHERE status = ?" if status else "") + " ORDER BY path"
        rows = [dict(r) for r in self.conn.execute(sql, (status,) if status else ())]
        return self._with_facts(rows) if facts else rows

    def _with_facts(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sets: dict[int, bytes] = {}
        for row in rows:
            blob = row.pop("facts_z", None)
            set_id = row.pop("driver_set_id", None)
            bases = row.pop("driver_bases", None)
            if blob is None:
                continue
            drivers = None
            if set_id is not None:
                if set_id not in sets:
                    found = self.conn.execute("SELECT drivers FROM driver_sets WHERE id = ?", (set_id,)).fetchone()
                    sets[set_id] = found[0] if found else b""
                drivers = sets[set_id] or None
            row["facts"] = json.dumps(unpack_facts(blob, drivers, bases), sort_keys=True)
        return rows

    def summaries(self) -> Iterator[sqlite3.Row]:
        """Every dump's newest result as summary columns only, merged by path with the skipped files
        (status ``skipped``, ``error_code`` the reason), streamed from two cursors (the index's input at
        100k dumps: no list of rows is built)."""
        results = self.conn.execute(f"SELECT {_SUMMARY_COLUMNS} {_SUMMARY_FROM} ORDER BY d.path")
        yield from heapq.merge(results, self.skipped_summaries(), key=lambda r: r[1])

    def skipped_summaries(self) -> Iterator[sqlite3.Row]:
        """The skipped files (no result) as summary rows, by path: status ``skipped``, ``error_code`` the reason,
        ``error_message`` its words, ``dump_size`` the size seen, ``finished`` when last seen, ``run_id`` the
        last run that skipped it; no dump id, outputs or facts. The index and ``catalog export`` show these."""
        yield from self.conn.execute(
            "SELECT NULL AS dump_id, path, size AS dump_size, 'skipped' AS status, reason AS error_code,"
            " message AS error_message, 0 AS transient, host, NULL AS crash_time, NULL AS bugcheck_code,"
            " NULL AS bugcheck_name, NULL AS parameters, NULL AS culprit, NULL AS bucket, NULL AS build,"
            " NULL AS machine_name, NULL AS process, NULL AS engine, 0 AS warnings_count, NULL AS report_paths,"
            " NULL AS small_path, last_seen AS finished, run_id FROM skips AS s WHERE NOT EXISTS"
            " (SELECT 1 FROM dumps AS d WHERE d.path = s.path AND d.latest_result_id IS NOT NULL) ORDER BY path"
        )

    def skipped(self) -> Iterator[sqlite3.Row]:
        """The files runs saw and did not process (no result), by path: ``catalog list --skipped``."""
        yield from self.conn.execute(
            "SELECT path, reason, message, size, host, first_seen, last_seen, run_id FROM skips AS s WHERE NOT EXISTS"
            " (SELECT 1 FROM dumps AS d WHERE d.path = s.path AND d.latest_result_id IS NOT NULL) ORDER BY path"
        )

    def results_for_run(self, run_id: int) -> list[dict[str, Any]]:
        rows = [
            dict(r)
            for r in self.conn.execute(
                "SELECT d.path, r.*, f.facts_z, f.driver_set_id, f.driver_bases FROM results AS r"
                " JOIN dumps AS d ON d.id = r.dump_id LEFT JOIN result_facts AS f ON f.result_id = r.id"
                " WHERE r.run_id = ? ORDER BY r.id",
                (run_id,),
            )
        ]
        return self._with_facts(rows)

    def buckets(self) -> list[sqlite3.Row]:
        """The buckets, largest first."""
        return list(self.conn.execute("SELECT * FROM buckets ORDER BY count DESC, bucket"))

    def bucket_days(self) -> Iterator[sqlite3.Row]:
        """(bucket, day, crashes) over every dump's newest ok result: the sparklines' data."""
        yield from self.conn.execute(
            "SELECT r.bucket, substr(r.crash_time, 1, 10) AS day, count(*) AS n FROM dumps AS d"
            " JOIN results AS r ON r.id = d.latest_result_id WHERE r.status = 'ok' AND r.bucket IS NOT NULL"
            " AND r.crash_time IS NOT NULL GROUP BY r.bucket, day ORDER BY r.bucket, day"
        )

    def max_result_id(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(id), 0) FROM results").fetchone()[0])

    def index_stamp(self) -> str:
        """What the index shows, in one short text: the newest result, and the skip rows (how many, last
        changed). An index built from an older stamp is stale."""
        n, changed = self.conn.execute("SELECT count(*), max(changed) FROM skips").fetchone()
        return f"{self.max_result_id()}:{n}:{changed or ''}"

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                (key, value, value),
            )

    def find_dump(self, key: str) -> sqlite3.Row | None:
        """A dump by id, exact path, or unique path suffix / file name."""
        if key.isdigit():
            row = self.conn.execute("SELECT * FROM dumps WHERE id = ?", (int(key),)).fetchone()
            if row is not None:
                return row
        row = self.conn.execute("SELECT * FROM dumps WHERE path = ?", (key,)).fetchone()
        if row is not None:
            return row
        like = "%" + key.replace("\\", "/").replace("%", r"\%").replace("_", r"\_")
        rows = self.conn.execute(
            "SELECT * FROM dumps WHERE replace(path, '\\', '/') LIKE ? ESCAPE '\\' LIMIT 2", (like,)
        ).fetchall()
        if len(rows) > 1:
            raise CatalogError(f"{self.path}: {key!r} matches more than one dump; give its id or a longer path")
        return rows[0] if rows else None

    def results_for_dump(self, dump_id: int) -> list[dict[str, Any]]:
        rows = [
            dict(r)
            for r in self.conn.execute(
                "SELECT r.*, f.facts_z, f.driver_set_id, f.driver_bases FROM results AS r"
                " LEFT JOIN result_facts AS f ON f.result_id = r.id WHERE r.dump_id = ? ORDER BY r.id",
                (dump_id,),
            )
        ]
        return self._with_facts(rows)

    def count(self, table: str) -> int:
        if table not in {"dumps", "runs", "results", "buckets", "driver_sets", "result_facts", "skips"}:
            raise ValueError(table)
        return int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def rows_to_dicts(rows: Sequence[sqlite3.Row | dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as plain dicts, JSON columns decoded (for export and tests)."""
    out = []
    for row in rows:
        d = dict(row)
        d.pop("facts_z", None)
        for key in ("options", "report_paths", "facts", "warnings", "bugcheck_parameters"):
            if isinstance(d.get(key), str):
                d[key] = json.loads(d[key])
        out.append(d)
    return out
