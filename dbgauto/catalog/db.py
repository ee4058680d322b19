"""The batch catalog: one SQLite file per output folder (``DIR/dbgauto.sqlite``).

Why this shape: stdlib ``sqlite3`` in WAL mode, so ``dbgauto catalog list`` can read while a batch writes;
``isolation_level=None`` with explicit ``BEGIN IMMEDIATE``/``COMMIT`` (Python 3.11 has no
``Connection.autocommit``), so every write is one short transaction and a killed process leaves either the
whole row or nothing. The schema is versioned by ``PRAGMA user_version``: ``schema.sql`` is migration 1,
later migrations append to :data:`MIGRATIONS`. Only the coordinating batch process writes.

Network folders: WAL needs shared memory that SMB/NFS cannot provide, so a catalog on a network share
(a UNC ``--out``, a mapped network drive, an NFS/CIFS mount; :func:`dbgauto.util.paths.is_network_path`)
uses the rollback journal (``journal_mode = DELETE``): readers then wait for a write instead of reading
beside it. Read-only opens use :func:`dbgauto.util.paths.sqlite_uri` (``Path.as_uri()`` of a UNC path has
an authority SQLite refuses).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

from dbgauto.catalog.records import DumpState, ResultRecord, SourceState
from dbgauto.errors import CatalogError
from dbgauto.util.paths import is_network_path, sqlite_uri

__all__ = ["CATALOG_NAME", "MIGRATIONS", "SCHEMA_VERSION", "Catalog", "utc_now"]

log = logging.getLogger(__name__)

CATALOG_NAME = "dbgauto.sqlite"


def _schema_v1() -> str:
    return resources.files("dbgauto.catalog").joinpath("schema.sql").read_text(encoding="utf-8")


# Migration n (1-based) brings user_version from n-1 to n. Append; never edit a released one.
MIGRATIONS: tuple[Any, ...] = (_schema_v1,)
SCHEMA_VERSION = len(MIGRATIONS)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


# A dump's row with its latest result (the skip rule needs both).
_STATE_QUERY: Final = (
    "SELECT d.id, d.path, d.size, d.mtime_ns, d.hash, d.source_deleted,"
    " r.status, r.error_code, r.size AS rsize, r.mtime_ns AS rmtime, r.hash AS rhash"
    " FROM dumps AS d LEFT JOIN results AS r ON r.id = (SELECT max(id) FROM results WHERE dump_id = d.id)"
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
    )


class Catalog:
    """An open catalog. Use :meth:`open`; close it (or use it as a context manager)."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.root = path.parent
        self.conn = conn

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
            raise CatalogError(f"{path}: not a usable dbgauto catalog ({exc})") from exc
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
                # executescript commits any open transaction first; the script carries its own BEGIN/COMMIT.
                self.conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {target};\nCOMMIT;")
            except sqlite3.Error:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: "ok" when the file is sound."""
        return "; ".join(row[0] for row in self.conn.execute("PRAGMA integrity_check"))

    # ---------------------------------------------------------------- paths
    def relative(self, path: str | None) -> str | None:
        """An output path as stored: relative to the catalog folder when inside it."""
        if path is None:
            return None
        try:
            return Path(path).resolve().relative_to(self.root.resolve()).as_posix()
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
        """Every known path's state in one query (discovery compares thousands of files against it)."""
        return {row["path"]: _dump_state(row) for row in self.conn.execute(_STATE_QUERY)}

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
            " bugcheck_parameters, system_time, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " hash = coalesce(excluded.hash, hash), is_64bit = coalesce(excluded.is_64bit, is_64bit),"
            " dump_type = coalesce(excluded.dump_type, dump_type), machine = coalesce(excluded.machine, machine),"
            " build = coalesce(excluded.build, build), bugcheck_code = coalesce(excluded.bugcheck_code, bugcheck_code),"
            " bugcheck_parameters = coalesce(excluded.bugcheck_parameters, bugcheck_parameters),"
            " system_time = coalesce(excluded.system_time, system_time), last_seen = excluded.last_seen",
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
            ),
        )
        return int(c.execute("SELECT id FROM dumps WHERE path = ?", (rec.source.path,)).fetchone()[0])

    def add_result(self, run_id: int, rec: ResultRecord) -> int:
        """Record one dump's outcome (and its dump row) in one transaction; returns the result id."""
        now = utc_now()
        with self.transaction() as c:
            dump_id = self._upsert_dump(c, rec, now)
            reports = {fmt: self.relative(p) for fmt, p in rec.report_paths.items()}
            cur = c.execute(
                "INSERT INTO results (run_id, dump_id, status, error_code, error_message, size, mtime_ns, hash,"
                " small_path, small_size, report_paths, facts, engine, debugger_version, convert_seconds,"
                " facts_seconds, report_seconds, total_seconds, warnings, verified, verify_note, finished)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                    _json(rec.facts),
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
                ),
            )
            return int(cur.lastrowid or 0)

    def mark_source_deleted(self, path: str) -> None:
        with self.transaction() as c:
            c.execute("UPDATE dumps SET source_deleted = ? WHERE path = ?", (utc_now(), path))

    def latest(self, *, status: str | None = None) -> list[sqlite3.Row]:
        """The newest result of every dump (optionally only 'ok' or 'failed'), ordered by path."""
        if status is None:
            return list(self.conn.execute("SELECT * FROM latest ORDER BY path"))
        return list(self.conn.execute("SELECT * FROM latest WHERE status = ? ORDER BY path", (status,)))

    def results_for_run(self, run_id: int) -> list[sqlite3.Row]:
        return list(
            self.conn.execute(
                "SELECT d.path, r.* FROM results AS r JOIN dumps AS d ON d.id = r.dump_id"
                " WHERE r.run_id = ? ORDER BY r.id",
                (run_id,),
            )
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

    def results_for_dump(self, dump_id: int) -> list[sqlite3.Row]:
        return list(self.conn.execute("SELECT * FROM results WHERE dump_id = ? ORDER BY id", (dump_id,)))

    def count(self, table: str) -> int:
        if table not in {"dumps", "runs", "results"}:
            raise ValueError(table)
        return int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def rows_to_dicts(rows: Sequence[sqlite3.Row]) -> list[dict[str, Any]]:
    """Rows as plain dicts, JSON columns decoded (for export and tests)."""
    out = []
    for row in rows:
        d = dict(row)
        for key in ("options", "report_paths", "facts", "warnings", "bugcheck_parameters"):
            if isinstance(d.get(key), str):
                d[key] = json.loads(d[key])
        out.append(d)
    return out
