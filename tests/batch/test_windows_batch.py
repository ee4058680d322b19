"""Hazard groups 2, 7 and 9 in the batch: a source that cannot be deleted, spawn workers, folder loops.

``fs.unlink_op`` stands in for Windows' sharing violation (PermissionError while a scanner or a debugger
holds the dump). The spawn pool is real (multiprocessing's spawn, as on Windows); the folder loop is a real
symlink loop walked as Windows would walk a junction it failed to flag (the ``descend`` seam follows it).
"""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import winkit
from batchkit import inflated_dumps

from dbgauto.batch import discover as discover_mod
from dbgauto.batch import runner
from dbgauto.batch.coordinator import BatchOptions, run_batch
from dbgauto.batch.tasks import TaskSpec
from dbgauto.catalog.records import ResultRecord, SourceState
from dbgauto.errors import DbgautoError
from dbgauto.util import fs


def test_a_source_held_open_is_kept_and_the_batch_goes_on(
    triage_x64_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dumps = inflated_dumps(tmp_path / "src", triage_x64_path, count=2)
    held = dumps[0].resolve()
    real = os.unlink
    tries: list[str] = []

    def unlink(path: os.PathLike[str] | str) -> None:
        tries.append(str(path))
        if Path(path).resolve() == held:
            raise PermissionError(32, "The process cannot access the file because it is being used by another process")
        real(path)

    monkeypatch.setattr(fs, "unlink_op", unlink)
    monkeypatch.setattr(fs, "busy_sleep", lambda s: None)
    summary = run_batch(
        BatchOptions(
            sources=[str(tmp_path / "src")],
            out_dir=str(tmp_path / "out"),
            report=False,
            delete_source_after_verify=True,
        )
    )
    assert summary.failures == []
    assert summary.exit_code == 0
    assert held.exists()
    assert not dumps[1].exists()
    assert summary.deleted == [str(dumps[1].resolve())]
    ((src, why),) = summary.kept
    assert src == str(held)
    assert why.startswith(f"cannot delete: {held}: cannot delete after {fs.BUSY_ATTEMPTS} attempts")
    assert tries.count(str(held)) == fs.BUSY_ATTEMPTS


def test_a_folder_loop_is_walked_once(tmp_path: Path, triage_x64_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "crashes"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "MEMORY.DMP").write_bytes(triage_x64_path.read_bytes())
    (root / "a" / "b" / "back").symlink_to(root, target_is_directory=True)  # a junction pointing up
    # by default links are never descended
    assert [f.path.name for f in discover_mod.discover([root])] == ["MEMORY.DMP"]
    # as Windows without the reparse-point check would: follow it; the walked-folder set must stop the loop
    monkeypatch.setattr(discover_mod, "descend", lambda entry: entry.is_dir(follow_symlinks=True))
    found = discover_mod.discover([root])
    assert [f.path for f in found] == [(root / "a" / "b" / "MEMORY.DMP").resolve()]


def test_task_payloads_and_results_pickle(tmp_path: Path) -> None:
    spec = TaskSpec(str(tmp_path / "MEMORY.DMP"), 10, 20, small_path="x", formats=("html",), extra={"report_name": "k"})
    rec = ResultRecord(source=SourceState(spec.source, 10, 20), status="failed", error_code="x", error_message="m")
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert pickle.loads(pickle.dumps(rec)) == rec


def test_start_method_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runner.START_METHOD_ENV, "spawn")
    assert runner.start_method() == "spawn"
    monkeypatch.setenv(runner.START_METHOD_ENV, "fork")
    with pytest.raises(DbgautoError, match="fork cannot recycle"):
        runner.start_method()
    monkeypatch.delenv(runner.START_METHOD_ENV)
    assert runner.start_method() in ("spawn", "forkserver")


def test_spawn_workers_preload_what_tasks_need() -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        1, mp_context=ctx, initializer=runner._worker_init, initargs=(os.getpid(), 30, "spawn")
    ) as ex:
        got = ex.submit(winkit.loaded, runner.WORKER_PRELOAD).result(timeout=120)
    assert got == list(runner.WORKER_PRELOAD)
    with ProcessPoolExecutor(1, mp_context=ctx) as bare:  # without the initializer a spawned worker has none
        assert bare.submit(winkit.loaded, runner.WORKER_PRELOAD).result(timeout=120) == []
