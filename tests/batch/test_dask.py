"""The same batch through a real Dask LocalCluster (`--scheduler tcp://...`) gives the catalog and outputs of the
local process pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batchkit import DumpTree, run_cli, sha256

from dbgauto.batch.runner import resources_for
from dbgauto.catalog.db import CATALOG_NAME, Catalog

distributed = pytest.importorskip("distributed", reason="Dask distributed (the `cluster` extra) is not installed")

COMPARED = (
    "path",
    "status",
    "error_code",
    "error_message",
    "dump_type",
    "is_64bit",
    "machine",
    "build",
    "bugcheck_code",
    "dump_hash",
    "small_size",
    "facts",
    "warnings",
)


@pytest.fixture(scope="module")
def cluster():  # type: ignore[no-untyped-def]
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address=None
    ) as lc:
        yield lc


def _dask_task_keys(cluster: object) -> set[str]:
    return {str(t[0]) for t in cluster.scheduler.transition_log if "run_task" in str(t[0])}  # type: ignore[attr-defined]


def _rows(out: Path) -> dict[str, dict[str, object]]:
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        assert cat.integrity_check() == "ok"
        rows = {}
        for r in cat.latest():
            d = {k: r[k] for k in COMPARED}
            d["facts"] = _without_volatile(json.loads(r["facts"])) if r["facts"] else None
            d["small"] = r["small_path"]
            d["reports"] = json.loads(r["report_paths"] or "{}")
            rows[r["path"]] = d
        return rows


def _without_volatile(facts: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in facts.items() if k not in ("elapsed", "generated")}


def _compare(tree: DumpTree, tmp_path: Path, cluster: object, *extra: str) -> tuple[dict, dict]:  # type: ignore[type-arg]
    local, dask = tmp_path / "local", tmp_path / "dask"
    a = run_cli("batch", tree.root, "--out", local, "--jobs", "2", *extra)
    before = _dask_task_keys(cluster)
    b = run_cli("batch", tree.root, "--out", dask, "--scheduler", cluster.scheduler_address, *extra)
    ran = _dask_task_keys(cluster) - before
    assert len(ran) == len(tree.all_dumps())  # every task really went through the Dask scheduler
    assert (a.returncode, b.returncode) == (1, 1), (a.stderr, b.stderr)  # the broken ones fail in both
    ra, rb = _rows(local), _rows(dask)
    assert ra == rb
    return ra, rb


def test_inventory_batch_on_dask_equals_local_pool(cluster, synth_tree: DumpTree, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows, _ = _compare(synth_tree, tmp_path, cluster, "--no-convert", "--no-report")
    assert {p for p, r in rows.items() if r["status"] == "ok"} == {str(p.resolve()) for p in synth_tree.good}


def test_full_batch_on_dask_equals_local_pool(cluster, full_tree: DumpTree, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows, _ = _compare(full_tree, tmp_path, cluster, "--formats", "html,json")
    ok = {p for p, r in rows.items() if r["status"] == "ok"}
    assert ok == {str(p.resolve()) for p in full_tree.good}
    for path in ok:  # the same output files, byte for byte (reports carry no run-specific data in JSON)
        r = rows[path]
        if r["small"]:
            assert sha256(tmp_path / "local" / r["small"]) == sha256(tmp_path / "dask" / r["small"])
        local_json = json.loads((tmp_path / "local" / r["reports"]["json"]).read_text())
        dask_json = json.loads((tmp_path / "dask" / r["reports"]["json"]).read_text())
        assert _without_volatile(local_json) == _without_volatile(dask_json)


def test_debugger_tasks_carry_a_worker_resource() -> None:
    assert resources_for("dbgeng") == {"DBGENG": 1}
    assert resources_for("cdb") == {"DBGENG": 1}
    assert resources_for("native") is None
