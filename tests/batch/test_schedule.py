"""`dbgauto schedule`: cron parsing, the missed-run policy with real time, and a real every-second schedule."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from batchkit import REPO, DumpTree, dbgauto_cmd, run_cli, synth_dump

from dbgauto.batch.schedule import CronSchedule, ScheduleLoop
from dbgauto.catalog.db import CATALOG_NAME, Catalog


def _every_second(src: Path, out: Path, *schedule_options: str) -> subprocess.Popen[str]:
    """``dbgauto schedule`` firing every second, running an inventory-only batch of ``src`` into ``out``."""
    args = ("schedule", "--cron", "* * * * * *", *schedule_options, "--", "batch", src, "--out", out)
    return subprocess.Popen(
        dbgauto_cmd(*args, "--no-convert", "--no-report"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cron_expressions() -> None:
    nightly = CronSchedule("0 2 * * *")
    start = datetime(2026, 3, 1, 1, 59, 59).astimezone()
    assert nightly.next_after(start).replace(tzinfo=None) == datetime(2026, 3, 1, 2, 0)
    every_5s = CronSchedule("*/5 * * * * *")  # six fields: seconds first
    assert every_5s.with_seconds
    assert every_5s.next_after(start).replace(tzinfo=None) == datetime(2026, 3, 1, 2, 0, 0)
    assert every_5s.next_after(datetime(2026, 3, 1, 2, 0, 0).astimezone()).second == 5
    for bad in ("* * *", "61 * * * *", "* * * * * * * *", "every day"):
        with pytest.raises(ValueError, match="cron expression"):
            CronSchedule(bad)


@pytest.mark.parametrize("policy", ["run-once", "skip"])
def test_missed_fire_times_while_a_run_is_long(policy: str) -> None:
    """A run longer than the interval: run-once starts the next run at once; skip waits for a fire time."""
    spans: list[tuple[float, float]] = []

    def job() -> int:
        t0 = time.time()
        time.sleep(1.3)  # every-second schedule: at least one fire time passes during the run
        spans.append((t0, time.time()))
        return 0

    loop = ScheduleLoop(CronSchedule("* * * * * *"), job, missed=policy, max_runs=2)
    assert loop.run() == 0
    assert len(spans) == 2
    gap = spans[1][0] - spans[0][1]
    if policy == "run-once":
        assert gap < 0.3  # caught up immediately, once
    else:
        assert gap > 0.0
        assert spans[1][0] % 1.0 < 0.3  # started on a whole-second fire time


def test_schedule_every_second_runs_twice_and_processes_new_files_only(tmp_path: Path) -> None:
    src = tmp_path / "src"
    first_dumps = [synth_dump(src / f"d{i}.dmp", "x64", 6, 0xD1 + i) for i in range(3)]
    out = tmp_path / "out"
    proc = _every_second(src, out, "--max-runs", "2")
    late = None
    try:
        deadline = time.monotonic() + 60
        while late is None and time.monotonic() < deadline:  # run 1 has discovered its files once its row exists
            try:
                conn = sqlite3.connect(f"{(out / CATALOG_NAME).as_uri()}?mode=ro", uri=True)
                runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
                conn.close()
            except sqlite3.Error:
                runs = 0
            if runs >= 1:
                late = synth_dump(src / "late.dmp", "x86pae", 5, 0x9F)
            else:
                time.sleep(0.02)
        _stdout, stderr = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert late is not None, "the first scheduled run never started"
    assert proc.returncode == 0, stderr
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        runs = sorted(cat.runs(), key=lambda r: r["id"])
        assert len(runs) == 2
        assert sorted(r["path"] for r in cat.results_for_run(runs[0]["id"])) == sorted(
            str(p.resolve()) for p in first_dumps
        )
        assert [r["path"] for r in cat.results_for_run(runs[1]["id"])] == [str(late.resolve())]
        assert (runs[1]["found"], runs[1]["skipped"]) == (4, 3)


def test_once_returns_the_batch_status_and_usage_errors(synth_tree: DumpTree, tmp_path: Path) -> None:
    res = run_cli(
        "schedule",
        "--cron",
        "0 2 * * *",
        "--once",
        "--",
        "batch",
        synth_tree.root,
        "--out",
        tmp_path / "o",
        "--no-convert",
        "--no-report",
    )
    assert res.returncode == 1  # the broken dumps failed, as the batch itself says
    assert "failed (2)" in res.stdout
    assert run_cli("schedule", "--cron", "0 2 * * *", "--once").returncode == 2
    bad = run_cli("schedule", "--cron", "0 25 * * *", "--once", "--", "batch", synth_tree.root, "--out", tmp_path)
    assert bad.returncode == 2
    assert "--cron" in bad.stderr


def test_sigterm_ends_the_loop_after_the_current_run(synth_tree: DumpTree, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _every_second(synth_tree.root, out)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out / CATALOG_NAME).exists():
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr  # the last (only) run's status: the broken dumps failed
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        runs = cat.runs()
        assert len(runs) == 1
        assert runs[0]["status"] == "completed"  # SIGTERM did not interrupt the batch itself
