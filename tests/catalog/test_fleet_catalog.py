"""Schema 2: migration in place from a catalog written with the schema-1 SQL, summary columns, driver lists
stored once, compressed facts (size per dump), buckets, and the "what changed" rules."""

from __future__ import annotations

import json
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from dbgauto.catalog.changes import changes_since
from dbgauto.catalog.db import CATALOG_NAME, SCHEMA_VERSION, Catalog
from dbgauto.catalog.records import HeaderFacts, ResultRecord, SourceState
from dbgauto.engines.jobs import facts_from_dump


@pytest.fixture(scope="module")
def real_facts(triage_x64_path: Path) -> dict[str, Any]:
    return facts_from_dump(triage_x64_path).to_dict()


def _v1_catalog(path: Path, facts: dict[str, Any]) -> None:
    """A catalog as today's main writes it: the schema-1 SQL, user_version 1, two results with facts JSON text."""
    conn = sqlite3.connect(path)
    sql = resources.files("dbgauto.catalog").joinpath("schema.sql").read_text(encoding="utf-8")
    conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = 1;\nCOMMIT;")
    conn.execute(
        "INSERT INTO runs (started, options, status) VALUES ('2026-11-01T00:00:00.000+00:00', '{}', 'completed')"
    )
    for i, path_text in enumerate(("/share/PC1/MEMORY.DMP", "/share/PC2/MEMORY.DMP"), start=1):
        conn.execute(
            "INSERT INTO dumps (path, size, mtime_ns, hash, bugcheck_code, first_seen, last_seen)"
            " VALUES (?, 1, 1, 'h', 126, 'x', 'x')",
            (path_text,),
        )
        conn.execute(
            "INSERT INTO results (run_id, dump_id, status, facts, warnings, report_paths, finished)"
            " VALUES (1, ?, 'ok', ?, '[\"w\"]', '{}', '2026-11-01T00:00:01.000+00:00')",
            (i, json.dumps(facts)),
        )
    conn.execute(
        "INSERT INTO dumps (path, size, mtime_ns, first_seen, last_seen) VALUES ('/share/PC3/bad.dmp', 1, 1, 'x', 'x')"
    )
    conn.execute(
        "INSERT INTO results (run_id, dump_id, status, error_code, finished)"
        " VALUES (1, 3, 'failed', 'os_error', '2026-11-01T00:00:02.000+00:00')"
    )
    conn.commit()
    conn.close()


def test_v1_catalog_migrates_in_place(tmp_path: Path, real_facts: dict[str, Any]) -> None:
    path = tmp_path / CATALOG_NAME
    _v1_catalog(path, real_facts)
    with Catalog.open(path) as cat:
        assert cat.user_version == SCHEMA_VERSION == 4
        rows = {r["path"]: r for r in cat.latest()}
        assert len(rows) == 3
        pc1 = rows["/share/PC1/MEMORY.DMP"]
        # the facts read back equal what was recorded (driver list included)
        assert json.loads(pc1["facts"]) == json.loads(json.dumps(real_facts))
        # summary columns from the facts (values from the real dump: bug check 0x1000007E in amdppm.sys)
        assert pc1["bugcheck_code"] == 0x1000007E
        assert pc1["bugcheck_name"] == "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M"
        assert pc1["culprit"] == "amdppm.sys"
        assert pc1["build"] == 19041
        assert pc1["bucket"] == "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M_amdppm"
        assert pc1["warnings_count"] == 1 + len(real_facts.get("warnings") or [])
        assert rows["/share/PC3/bad.dmp"]["transient"] == 1
        assert cat.count("driver_sets") == 1  # two results, one driver list
        cat.refresh_buckets()  # current after the migration: nothing to do
        [bucket] = cat.buckets()
        assert bucket["count"] == 2
        assert bucket["first_seen"] == real_facts["crash_time"]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM results WHERE facts IS NOT NULL").fetchone()[0] == 0
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def _booted(facts: dict[str, Any], boot: int) -> dict[str, Any]:
    """The facts as another boot of the machine would give them: every driver 2 MiB x ``boot`` higher (KASLR)."""
    drivers = [dict(d, base=hex(int(d["base"], 16) + (boot << 21))) for d in facts["drivers"]]
    return dict(facts, drivers=drivers)


def test_catalog_bytes_per_small_dump(tmp_path: Path, real_facts: dict[str, Any]) -> None:
    """Target: at most 8 KB per small dump (measured on the real small dump's facts, 40 KB as JSON), each dump
    from another boot (its drivers at other bases, as KASLR gives): the list is stored once without its bases,
    every result keeps its own bases and reads back exactly."""
    n = 300
    made = {}
    with Catalog.open(tmp_path / CATALOG_NAME) as cat:
        run = cat.start_run({})
        recs = []
        for i in range(n):
            facts = _booted(real_facts, i + 1)
            facts["source"] = dict(real_facts["source"], path=f"/share/PC{i}/MEMORY.DMP")
            made[f"/share/PC{i}/MEMORY.DMP"] = facts
            recs.append(
                ResultRecord(
                    SourceState(f"/share/PC{i}/MEMORY.DMP", 1444532, i, f"sha256-1m:{i:064x}"),
                    "ok",
                    header=HeaderFacts(True, 4, 0x8664, 19041, 0x1000007E, (1, 2, 3, 4), "2021-02-21T01:38:22"),
                    facts=facts,
                    report_paths={"html": f"reports/MEMORY-{i:08x}.html", "json": f"reports/MEMORY-{i:08x}.json"},
                    host=f"PC{i}",
                )
            )
        for start in range(0, n, 64):
            cat.add_results(run, recs[start : start + 64])
        cat.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert cat.count("driver_sets") == 1
        for row in cat.latest()[::37]:
            assert json.loads(row["facts"]) == json.loads(json.dumps(made[row["path"]]))
    size = (tmp_path / CATALOG_NAME).stat().st_size
    assert size / n <= 8192, f"{size / n:.0f} bytes per dump"


def _rec(
    path: str, host: str, when: str, culprit: str, stamp: int, name: str = "IRQL_NOT_LESS_OR_EQUAL"
) -> ResultRecord:
    facts = {
        "crash_time": when,
        "bugcheck": {"code": "0xa", "name": name},
        "culprit": {"name": culprit, "timestamp": hex(stamp)},
    }
    return ResultRecord(SourceState(path, 1, 1), "ok", facts=facts, host=host)


def test_change_rules(tmp_path: Path) -> None:
    """Worked example for the documented rules (docs/scheduling.md): expectations counted by hand."""
    with Catalog.open(tmp_path / CATALOG_NAME) as cat:
        run = cat.start_run({})
        old = [
            # baseline of bucket A (netx.sys 0x100): 2 crashes within the 14 days before the window
            _rec("/s/h1/1.dmp", "h1", "2026-11-10T10:00:00Z", "netx.sys", 0x100),
            _rec("/s/h2/2.dmp", "h2", "2026-11-12T10:00:00Z", "netx.sys", 0x100),
            # bucket B (disky.sys 0x200): 1 old crash with the old driver
            _rec("/s/h3/3.dmp", "h3", "2026-11-05T10:00:00Z", "disky.sys", 0x200),
        ]
        cat.add_results(run, old)
        cat.conn.execute("UPDATE results SET finished = '2026-11-20T00:00:00.000+00:00'")
        since = "2026-11-21T00:00:00.000+00:00"
        new = [
            # bucket A: 3 crashes in the window (>= 3 and >= 3 x 2/14): rising
            _rec("/s/h4/4.dmp", "h4", "2026-11-20T08:00:00Z", "netx.sys", 0x100),
            _rec("/s/h5/5.dmp", "h5", "2026-11-20T09:00:00Z", "netx.sys", 0x100),
            _rec("/s/h9/6.dmp", "h9", "2026-11-20T12:00:00Z", "netx.sys", 0x100),
            # bucket B with a newer disky.sys: regression; 2 crashes on h9: a repeat host with the one above
            _rec("/s/h9/7.dmp", "h9", "2026-11-20T11:00:00Z", "disky.sys", 0x300),
            # bucket C, never seen: new
            _rec("/s/h6/8.dmp", "h6", "2026-11-20T10:00:00Z", "fresh.sys", 0x1, name="PAGE_FAULT_IN_NONPAGED_AREA"),
        ]
        run2 = cat.start_run({})
        cat.add_results(run2, new)
        ch = changes_since(cat.conn, since)
    assert ch["recorded"] == 5
    assert ch["window"] == {"start": "2026-11-19T12:00:00+00:00", "end": "2026-11-20T12:00:00+00:00"}
    assert [b["bucket"] for b in ch["new_buckets"]] == ["PAGE_FAULT_IN_NONPAGED_AREA_fresh"]
    assert ch["rising"] == [{"bucket": "IRQL_NOT_LESS_OR_EQUAL_netx", "window": 3, "baseline_daily": 0.143}]
    assert [(r["bucket"], r["previous_timestamp"], r["timestamp"]) for r in ch["regressions"]] == [
        ("IRQL_NOT_LESS_OR_EQUAL_disky", "0x200", "0x300")
    ]
    assert [(h["host"], h["crashes"]) for h in ch["repeat_hosts"]] == [("h9", 2)]


def test_buckets_left_stale_by_a_killed_run_are_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / CATALOG_NAME
    with Catalog.open(path) as cat:
        run = cat.start_run({})
        cat.add_results(run, [_rec("/s/a/1.dmp", "a", "2026-11-01T00:00:00Z", "x.sys", 1)])
        cat.refresh_buckets()
        cat.add_results(run, [_rec("/s/b/2.dmp", "b", "2026-11-02T00:00:00Z", "x.sys", 1)])
        # killed here: the second chunk is committed, the buckets were not refreshed
    with Catalog.open(path) as cat:
        assert [b["count"] for b in cat.buckets()] == [1]  # stale
        run = cat.start_run({})
        cat.add_results(run, [_rec("/s/c/3.dmp", "c", "2026-11-03T00:00:00Z", "y.sys", 1)])
        cat.refresh_buckets()
        assert {b["bucket"]: (b["count"], b["hosts"]) for b in cat.buckets()} == {
            "IRQL_NOT_LESS_OR_EQUAL_x": (2, 2),
            "IRQL_NOT_LESS_OR_EQUAL_y": (1, 1),
        }
