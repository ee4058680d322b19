"""`dbgauto batch --no-convert --no-report` (catalog only) on generated dumps, through the real CLI.

These exercise discovery, the incremental rule, the process pool and its fault handling (a worker that dies,
a task that hangs) without depending on conversion or reports; test_batch_e2e.py repeats the main job with them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from batchkit import DumpTree, run_cli, synth_dump

from dbgauto.catalog.db import CATALOG_NAME, Catalog

INVENTORY = ("--no-convert", "--no-report")


def _latest(out: Path) -> dict[str, dict[str, object]]:
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        assert cat.integrity_check() == "ok"
        return {r["path"]: dict(r) for r in cat.latest()}


def test_first_second_and_incremental_runs(synth_tree: DumpTree, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = synth_tree.hashes()

    first = run_cli("batch", synth_tree.root, "--out", out, *INVENTORY, "--jobs", "2")
    assert first.returncode == 1, first.stderr  # the broken ones failed
    assert f"{len(synth_tree.all_dumps())} dump(s) found, 0 unchanged" in first.stdout
    failed_lines = [ln.strip() for ln in first.stdout.splitlines() if ln.startswith("  /")]
    assert sorted(ln.split(":")[0] for ln in failed_lines) == sorted(str(p.resolve()) for p in synth_tree.broken)
    assert any("[truncated]" in ln for ln in failed_lines)
    assert any("[unsupported_dump_type]" in ln for ln in failed_lines)
    rows = _latest(out)
    assert {p for p, r in rows.items() if r["status"] == "ok"} == {str(p.resolve()) for p in synth_tree.good}
    # header facts come from the dumps: every good one carries the bugcheck it was generated with
    assert {Path(p).name: r["bugcheck_code"] for p, r in rows.items() if r["status"] == "ok"} == {
        "kernel64.dmp": 0xD1,
        "complete64.bin": 0x50,
        "active_pae.dmp": 0x7E,
        "full32": 0x0A,
    }
    assert {Path(p).name: r["is_64bit"] for p, r in rows.items() if r["status"] == "ok"} == {
        "kernel64.dmp": 1,
        "complete64.bin": 1,
        "active_pae.dmp": 0,
        "full32": 0,
    }

    second = run_cli("batch", synth_tree.root, "--out", out, *INVENTORY)
    assert second.returncode == 0, second.stderr
    assert "nothing new" in second.stdout
    assert "2 of them failed before" in second.stdout
    assert _latest(out) == rows  # not a single new result

    new = synth_dump(synth_tree.root / "c" / "late.dmp", "x64", 6, 0x133)
    os.utime(synth_tree.good[1])  # touched, same content: the hash says unchanged
    third = run_cli("batch", synth_tree.root, "--out", out, *INVENTORY, "--json")
    assert third.returncode == 0, third.stderr
    summary = json.loads(third.stdout)
    assert (summary["succeeded"], summary["failed"], summary["skipped"]) == (1, [], len(synth_tree.all_dumps()))
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        assert [r["path"] for r in cat.results_for_run(summary["run_id"])] == [str(new.resolve())]

    retry = run_cli("batch", synth_tree.root, "--out", out, *INVENTORY, "--retry-failed", "--json")
    assert {f["source"] for f in json.loads(retry.stdout)["failed"]} == {str(p.resolve()) for p in synth_tree.broken}
    after = synth_tree.hashes()
    assert {p: h for p, h in after.items() if p in before} == before  # sources byte-identical


@pytest.mark.parametrize("victims", [(2,), (0, 3)])
def test_a_dying_worker_fails_only_its_dump(synth_tree: DumpTree, tmp_path: Path, victims: tuple[int, ...]) -> None:
    dead = [synth_tree.good[i] for i in victims]
    out = tmp_path / "out"
    res = run_cli(
        "batch",
        synth_tree.root,
        "--out",
        out,
        *INVENTORY,
        "--jobs",
        "2",
        env={"DBGAUTO_FAULT_INJECT": ",".join(f"die:{v.name}" for v in dead)},
    )
    assert res.returncode == 1, res.stderr
    rows = _latest(out)
    assert len(rows) == len(synth_tree.all_dumps()), res.stdout + res.stderr
    for victim in dead:
        assert rows[str(victim.resolve())]["error_code"] == "worker_died"
        assert "worker process died" in str(rows[str(victim.resolve())]["error_message"])
    others = {p for p in synth_tree.good if p not in dead}
    assert all(rows[str(p.resolve())]["status"] == "ok" for p in others)
    assert len(rows) == len(synth_tree.all_dumps())


def test_recycled_workers_and_the_rich_display(synth_tree: DumpTree, tmp_path: Path) -> None:
    """A worker per dump (--max-tasks-per-child 1) gives the same catalog; --progress draws the bar."""
    res = run_cli(
        "batch", synth_tree.root, "--out", tmp_path / "a", *INVENTORY, "--max-tasks-per-child", "1", "--progress"
    )
    assert res.returncode == 1
    assert "dumps" in res.stderr
    assert f"{len(synth_tree.all_dumps())}/{len(synth_tree.all_dumps())}" in res.stderr  # the overall bar, complete
    plain = run_cli("batch", synth_tree.root, "--out", tmp_path / "b", *INVENTORY)
    assert "[1/" in plain.stderr  # not a terminal: plain log lines
    strip = ("error_message", "dump_id", "result_id", "finished", "total_seconds")
    a = {p: {k: v for k, v in r.items() if k not in strip} for p, r in _latest(tmp_path / "a").items()}
    b = {p: {k: v for k, v in r.items() if k not in strip} for p, r in _latest(tmp_path / "b").items()}
    assert a == b


def test_a_hung_task_times_out_and_the_batch_moves_on(synth_tree: DumpTree, tmp_path: Path) -> None:
    victim = synth_tree.good[0]
    out = tmp_path / "out"
    t0 = time.monotonic()
    res = run_cli(
        "batch",
        synth_tree.root,
        "--out",
        out,
        *INVENTORY,
        "--jobs",
        "2",
        "--task-timeout",
        "2",
        env={"DBGAUTO_FAULT_INJECT": f"hang:{victim.name}"},
        timeout=90,
    )
    assert time.monotonic() - t0 < 60
    assert res.returncode == 1
    rows = _latest(out)
    assert rows[str(victim.resolve())]["error_code"] == "task_timeout"
    assert all(rows[str(p.resolve())]["status"] == "ok" for p in synth_tree.good if p != victim)
    assert f"{victim.resolve()}: [task_timeout] no result after 2s" in res.stdout


def test_force_since_and_an_empty_source(synth_tree: DumpTree, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_cli("batch", synth_tree.root, "--out", out, *INVENTORY)
    forced = run_cli("batch", synth_tree.root, "--out", out, *INVENTORY, "--force", "--json")
    summary = json.loads(forced.stdout)
    assert (summary["succeeded"], len(summary["failed"]), summary["skipped"]) == (
        len(synth_tree.good),
        len(synth_tree.broken),
        0,
    )
    future = run_cli("batch", synth_tree.root, "--out", out, *INVENTORY, "--since", "2999-01-01")
    assert future.returncode == 0
    assert "no dumps found" in future.stdout
    assert run_cli("batch", synth_tree.root, "--out", out, "--since", "yesterday").returncode == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run_cli("batch", empty, "--out", tmp_path / "out2", *INVENTORY)
    assert res.returncode == 0
    assert "no dumps found" in res.stdout
