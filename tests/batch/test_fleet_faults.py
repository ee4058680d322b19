"""Regression tests for the batch/catalog faults fuzzing found (issue 14): a stale index after a kill, an idle
worker frozen at shutdown, disk full while recording, and transient failures that were never retried."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from batchkit import run_cli

from dbgauto.batch.runner import RunnerOptions, TaskRunner
from dbgauto.batch.tasks import FAULT_ENV, TaskSpec, run_task
from dbgauto.catalog.db import CATALOG_NAME, Catalog
from dbgauto.catalog.records import ResultRecord, SourceState
from dbgauto.errors import CatalogWriteError


def _tree(root: Path, triage: Path, names: list[str]) -> list[Path]:
    out = []
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(triage, p)
        out.append(p)
    return out


def _csv(out: Path) -> list[dict[str, str]]:
    with open(out / "index.csv", newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_index_older_than_the_catalog_is_rebuilt(tmp_path: Path, triage_x64_path: Path) -> None:
    """A run killed after its last catalog commit but before the index: the next run ("nothing new") must still
    refresh index.html/index.csv from the catalog."""
    src, out = tmp_path / "src", tmp_path / "out"
    _tree(src, triage_x64_path, ["PC1/a.dmp"])
    assert run_cli("batch", src, "--out", out, "--no-convert").returncode == 0
    assert len(_csv(out)) == 1
    # what the killed run left: its chunk committed (a dump row and its result), the index not rewritten
    late = _tree(src, triage_x64_path, ["PC2/b.dmp"])[0]
    st = late.stat()
    with Catalog.open(out / CATALOG_NAME) as cat:
        run = cat.start_run({})
        cat.add_results(run, [ResultRecord(SourceState(str(late.resolve()), st.st_size, st.st_mtime_ns), "ok")])
    assert len(_csv(out)) == 1  # stale
    again = run_cli("batch", src, "--out", out, "--no-convert")
    assert again.returncode == 0, again.stderr
    assert "nothing new" in again.stdout
    assert sorted(r["Full Path"] for r in _csv(out)) == sorted(str(p.resolve()) for p in src.rglob("*.dmp"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGSTOP of a pool worker")
def test_idle_worker_stopped_does_not_hang_shutdown(tmp_path: Path) -> None:
    """All results are in, then an idle worker is frozen (SIGSTOP): closing the pool must still end, within
    its own deadline, and the frozen worker must be gone."""
    runner = TaskRunner(RunnerOptions(jobs=2, shutdown_timeout=1.0, task_timeout=30))
    specs = [TaskSpec(str(tmp_path / f"missing{i}.dmp"), 0, 0) for i in range(4)]
    got: list[ResultRecord] = []
    runner.run(specs, run_task, on_done=lambda s, r: got.append(r))
    assert [r.error_code for r in got] == ["not_found"] * 4
    procs = list(runner._executor._processes.values())  # type: ignore[union-attr]
    assert procs
    os.kill(procs[0].pid, signal.SIGSTOP)
    closer = threading.Thread(target=runner.close, daemon=True)
    closer.start()
    closer.join(timeout=30)
    try:
        assert not closer.is_alive(), "closing the pool hung on a frozen idle worker"
        assert not procs[0].is_alive()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(procs[0].pid, signal.SIGKILL)


def test_disk_full_while_recording_is_a_typed_error(tmp_path: Path) -> None:
    """SQLite's own 'database or disk is full' (a page limit makes the real SQLITE_FULL path run)."""
    with Catalog.open(tmp_path / CATALOG_NAME) as cat:
        run = cat.start_run({})
        pages = cat.conn.execute("PRAGMA page_count").fetchone()[0]
        cat.conn.execute(f"PRAGMA max_page_count = {pages}")
        big = {"bugcheck": {"code": "0x50", "name": "X"}, "comment": os.urandom(400_000).hex()}
        rec = ResultRecord(SourceState("/x/a.dmp", 1, 1), "ok", facts=big)
        with pytest.raises(CatalogWriteError, match=r"dbgauto\.sqlite: cannot write the catalog: .*full"):
            cat.add_results(run, [rec])
        assert cat.count("results") == 0  # nothing half-written


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return res.returncode == 0


def test_disk_full_batch_says_one_line(tmp_path: Path, triage_x64_path: Path) -> None:
    """A real full file system under the output folder: one line naming the catalog, exit 1, no
    'internal error', and the catalog is left as it was."""
    mnt = tmp_path / "small_fs"
    if not _mount_tmpfs(mnt, "512k"):
        pytest.skip("needs root and mount(8) for a small tmpfs (a real full file system)")
    try:
        src, out = tmp_path / "src", mnt / "out"
        _tree(src, triage_x64_path, ["PC1/a.dmp"])
        first = run_cli("batch", src, "--out", out, "--no-convert", "--no-report")
        assert first.returncode == 0, first.stderr
        filler = mnt / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            with contextlib.suppress(OSError):
                for _ in range(1024):  # 512 KiB at most: the file system is full before that
                    os.write(fd, b"\0" * 1024)
        finally:
            os.close(fd)
        _tree(src, triage_x64_path, [f"PC{i}/b.dmp" for i in range(2, 40)])
        res = run_cli("batch", src, "--out", out, "--no-convert", "--no-report")
        assert res.returncode == 1, (res.stdout, res.stderr)
        lines = [ln for ln in res.stderr.splitlines() if "dbgauto.sqlite" in ln]
        assert lines, res.stderr
        assert "full" in lines[-1] or "I/O" in lines[-1], res.stderr
        assert "internal error" not in res.stderr
        assert "Traceback" not in res.stderr
        filler.unlink()
        conn = sqlite3.connect(out / CATALOG_NAME)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_transient_failure_is_retried_next_run_broken_is_not(tmp_path: Path, triage_x64_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    flaky, _good = _tree(src, triage_x64_path, ["PC1/flaky.dmp", "PC2/good.dmp"])
    broken = src / "PC3" / "broken.dmp"
    broken.parent.mkdir()
    broken.write_bytes(triage_x64_path.read_bytes()[:0x900])  # a cut header: a broken dump
    first = run_cli("batch", src, "--out", out, "--no-convert", "--json", env={FAULT_ENV: f"oserror:{flaky.name}"})
    assert first.returncode == 1
    codes = {Path(r["source"]).name: r["error_code"] for r in json.loads(first.stdout)["failed"]}
    assert codes == {"flaky.dmp": "os_error", "broken.dmp": "truncated"}
    rows = {Path(r["Full Path"]).name: r for r in _csv(out)}
    assert rows["flaky.dmp"]["Status"] == "failed (will retry)"
    assert rows["broken.dmp"]["Status"] == "failed"
    second = run_cli("batch", src, "--out", out, "--no-convert", "--json")
    summary = json.loads(second.stdout)
    assert second.returncode == 0, second.stderr
    assert summary["succeeded"] == 1  # flaky retried (ok) ...
    assert summary["failed"] == []  # ... and broken not retried
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        latest = {Path(r["path"]).name: r for r in cat.latest(facts=False)}
    assert latest["flaky.dmp"]["status"] == "ok"
    assert latest["broken.dmp"]["status"] == "failed"
