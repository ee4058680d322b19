"""Schema 3: migration in place from a schema-2 catalog written by main's own batch (tests/catalog/data), and
the skip rows (one per path, updated, removed once the path has a result, merged into the index rows)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from dbgauto.catalog.db import CATALOG_NAME, SCHEMA_VERSION, Catalog
from dbgauto.catalog.records import ResultRecord, SkipRecord, SourceState

DATA = Path(__file__).parent / "data"
# What main's batch recorded (tests/catalog/data/README.md): paths, hosts, outcomes.
MAIN_ROWS = {
    "/tmp/fs_s2/src/PC1/Minidump/a.dmp": ("PC1", "ok", None),
    "/tmp/fs_s2/src/PC2/Minidump/b.dmp": ("PC2", "ok", None),
    "/tmp/fs_s2/src/PC2/Minidump/bad.dmp": ("PC2", "failed", "truncated"),
}


def _schema2(tmp_path: Path) -> Path:
    path = tmp_path / CATALOG_NAME
    shutil.copyfile(DATA / "schema2_main.sqlite", path)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2  # as main wrote it
    finally:
        conn.close()
    return path


def test_schema2_catalog_from_main_migrates_in_place(tmp_path: Path) -> None:
    path = _schema2(tmp_path)
    with Catalog.open(path) as cat:
        assert cat.user_version == SCHEMA_VERSION == 4
        rows = {r["path"]: (r["host"], r["status"], r["error_code"]) for r in cat.summaries()}
        assert rows == MAIN_ROWS
        assert cat.count("skips") == 0
        [bucket] = cat.buckets()
        assert (bucket["bucket"], bucket["count"], bucket["hosts"]) == (
            "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M_amdppm",
            2,
            2,
        )
        assert cat.integrity_check() == "ok"
        # the facts recorded by main read back (driver list included)
        [a] = [r for r in cat.latest() if r["path"].endswith("a.dmp")]
        assert '"amdppm.sys"' in a["facts"]
    with Catalog.open(path, readonly=True) as cat:  # a migrated file opens read-only: nothing left to do
        assert cat.user_version == SCHEMA_VERSION


def _skip(path: str, reason: str = "older_than_since", size: int = 10, mtime: int = 1) -> SkipRecord:
    return SkipRecord(path, size, mtime, reason, f"{reason} message", "PC9")


def test_skip_rows_one_per_path_updated_then_replaced_by_a_result(tmp_path: Path) -> None:
    path = _schema2(tmp_path)
    with Catalog.open(path) as cat:
        run1 = cat.start_run({})
        old, user = "/tmp/fs_s2/src/PC9/Minidump/old.dmp", "/tmp/fs_s2/src/PC9/Minidump/user.dmp"
        # a path that already has a result is never given a skip row: it keeps showing its result
        cat.record_skips(run1, [_skip(old), _skip(user, "not_a_dump"), _skip("/tmp/fs_s2/src/PC1/Minidump/a.dmp")])
        assert cat.count("skips") == 2
        first = {r["path"]: dict(r) for r in cat.conn.execute("SELECT * FROM skips")}
        stamp1 = cat.index_stamp()
        run2 = cat.start_run({})
        cat.record_skips(run2, [_skip(old), _skip(user, "not_a_dump")])  # the next night: same files
        again = {r["path"]: dict(r) for r in cat.conn.execute("SELECT * FROM skips")}
        assert cat.count("skips") == 2
        assert {p: (r["first_seen"], r["changed"], r["run_id"]) for p, r in again.items()} == {
            p: (r["first_seen"], r["changed"], run2) for p, r in first.items()
        }
        assert cat.index_stamp() == stamp1  # nothing the index shows changed: no rebuild needed
        cat.record_skips(run2, [_skip(old, size=11)])  # the file changed: its row says so
        assert cat.index_stamp() != stamp1
        # merged with the results by path, status skipped, the reason as the code
        rows = [(r["path"], r["status"], r["error_code"]) for r in cat.summaries()]
        assert [p for p, _, _ in rows] == sorted(p for p, _, _ in rows)
        assert len(rows) == 5
        assert (old, "skipped", "older_than_since") in rows
        assert (user, "skipped", "not_a_dump") in rows
        # processed later (e.g. without --since): the skip row goes, the result shows
        cat.add_results(run2, [ResultRecord(SourceState(old, 11, 2), "failed", error_code="truncated")])
        assert cat.count("skips") == 1
        statuses = {r["path"]: r["status"] for r in cat.summaries()}
        assert statuses[old] == "failed"
        assert sum(1 for p in statuses if p == old) == 1
