"""The SQLite catalog on real files: schema and migrations, WAL, round trips, damaged and newer files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dbgauto.catalog.db import CATALOG_NAME, SCHEMA_VERSION, Catalog, rows_to_dicts
from dbgauto.catalog.records import HeaderFacts, ResultRecord, SourceState
from dbgauto.errors import CatalogError, CatalogWriteError


def _record(path: str, status: str = "ok", *, size: int = 100, mtime: int = 5, **kw: object) -> ResultRecord:
    return ResultRecord(
        source=SourceState(path, size, mtime, f"sha256-1m:{size:x}"),
        status=status,
        header=HeaderFacts(
            is_64bit=True,
            dump_type=6,
            machine=0x8664,
            build=19041,
            bugcheck_code=0xD1,
            bugcheck_parameters=(1, 2, 3, 2**64 - 1),
        ),
        **kw,  # type: ignore[arg-type]
    )


def test_new_catalog_has_schema_wal_and_version(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / CATALOG_NAME) as cat:
        assert cat.user_version == SCHEMA_VERSION >= 1
        assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in cat.conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        assert {"dumps", "runs", "results", "latest"} <= tables
        assert cat.integrity_check() == "ok"
    # reopening does not migrate again (the CREATE TABLEs would fail)
    with Catalog.open(tmp_path / CATALOG_NAME) as cat:
        assert cat.user_version == SCHEMA_VERSION


def test_result_round_trip_and_latest(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / CATALOG_NAME) as cat:
        run1 = cat.start_run({"jobs": 2}, version="t")
        small = tmp_path / "small" / "a.mini.dmp"
        cat.add_result(
            run1,
            _record(
                "/src/a.dmp",
                small_path=str(small),
                report_paths={"html": str(tmp_path / "r.html")},
                facts={"bugcheck": {"code": 0xD1}},
                warnings=["w1"],
            ),
        )
        cat.add_result(run1, _record("/src/b.dmp", "failed", error_code="truncated", error_message="/src/b.dmp: cut"))
        cat.finish_run(run1)
        run2 = cat.start_run({}, version="t")
        cat.add_result(run2, _record("/src/b.dmp", size=200, mtime=9))
        cat.finish_run(run2)

        latest = {r["path"]: r for r in cat.latest()}
        assert set(latest) == {"/src/a.dmp", "/src/b.dmp"}
        assert latest["/src/b.dmp"]["status"] == "ok"
        assert latest["/src/b.dmp"]["run_id"] == run2
        assert latest["/src/a.dmp"]["small_path"] == "small/a.mini.dmp"  # stored relative to the catalog
        assert cat.absolute(latest["/src/a.dmp"]["small_path"]) == small
        assert [r["path"] for r in cat.latest(status="ok")] == ["/src/a.dmp", "/src/b.dmp"]
        d = rows_to_dicts([latest["/src/a.dmp"]])[0]
        assert d["facts"] == {"bugcheck": {"code": 0xD1}}
        assert d["warnings"] == ["w1"]
        assert d["report_paths"] == {"html": "r.html"}
        dump = rows_to_dicts([cat.find_dump("a.dmp")])[0]
        assert dump["bugcheck_parameters"] == [1, 2, 3, 2**64 - 1]  # 64-bit values survive (JSON, not INTEGER)

        runs = {r["id"]: r for r in cat.runs()}
        assert (runs[run1]["succeeded"], runs[run1]["failed"], runs[run1]["status"]) == (1, 1, "completed")
        assert (runs[run2]["succeeded"], runs[run2]["failed"]) == (1, 0)

        state = cat.dump_state("/src/b.dmp")
        assert state is not None
        assert (state.size, state.mtime_ns, state.last_status) == (200, 9, "ok")
        assert cat.dump_state("/src/none.dmp") is None
        states = cat.all_dump_states()
        assert states["/src/b.dmp"] == state  # the bulk query (discovery's) agrees with the single one
        assert "/src/none.dmp" not in states
        assert len(cat.results_for_dump(state.dump_id)) == 2


def test_interrupted_runs_are_marked(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / CATALOG_NAME) as cat:
        run = cat.start_run({})
        cat.add_result(run, _record("/src/a.dmp"))
    with Catalog.open(tmp_path / CATALOG_NAME) as cat:  # the first process "died" without finish_run
        assert cat.mark_interrupted_runs() == 1
        row = cat.runs()[0]
        assert (row["status"], row["succeeded"], row["ended"]) == ("interrupted", 1, None)


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / CATALOG_NAME) as cat:
        run = cat.start_run({})
        bad = _record("/src/a.dmp")
        bad.status = "weird"  # violates the CHECK constraint after the dump row was upserted
        with pytest.raises(sqlite3.IntegrityError):
            cat.add_result(run, bad)
        assert cat.count("dumps") == 0
        assert cat.count("results") == 0
        assert not cat.conn.in_transaction


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / CATALOG_NAME
    Catalog.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(CatalogError, match="newer than this dbgauto") as info:
        Catalog.open(path)
    assert str(path) in str(info.value)


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / CATALOG_NAME
    path.write_bytes(b"this is not sqlite" * 500)
    with pytest.raises(CatalogError, match="not a usable dbgauto catalog") as info:
        Catalog.open(path)
    assert str(path) in str(info.value)


def test_readonly_missing_and_readonly_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no catalog here"):
        Catalog.open(tmp_path / CATALOG_NAME, readonly=True)
    Catalog.open(tmp_path / CATALOG_NAME).close()
    with (
        Catalog.open(tmp_path / CATALOG_NAME, readonly=True) as cat,
        pytest.raises(CatalogWriteError, match="readonly"),
    ):
        cat.start_run({})


def test_migration_from_an_empty_v0_file(tmp_path: Path) -> None:
    path = tmp_path / CATALOG_NAME
    sqlite3.connect(path).close()  # an empty database, user_version 0
    with Catalog.open(path) as cat:
        assert cat.user_version == SCHEMA_VERSION
        assert cat.count("runs") == 0


def test_find_dump_ambiguous_suffix(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / CATALOG_NAME) as cat:
        run = cat.start_run({})
        cat.add_result(run, _record("/h1/MEMORY.DMP"))
        cat.add_result(run, _record("/h2/MEMORY.DMP"))
        with pytest.raises(CatalogError, match="more than one"):
            cat.find_dump("MEMORY.DMP")
        row = cat.find_dump("h2/MEMORY.DMP")
        assert row is not None
        assert row["path"] == "/h2/MEMORY.DMP"
        assert cat.find_dump(str(row["id"]))["path"] == "/h2/MEMORY.DMP"
