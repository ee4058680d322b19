"""`dbgauto schedule`: cron parsing, the missed-run policy on an injected clock, and a real every-second schedule."""

from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from batchkit import REPO, DumpTree, LineWatch, dbgauto_cmd, run_cli, synth_dump

from dbgauto.batch.schedule import MAX_SLEEP, CronSchedule, ScheduleLoop
from dbgauto.catalog.db import CATALOG_NAME, Catalog


def _every_second(src: Path, out: Path, *schedule_options: str) -> tuple[subprocess.Popen[str], LineWatch]:
    """``dbgauto schedule`` firing every second, running an inventory-only batch of ``src`` into ``out``; its log
    (the loop's lines and each batch's) is watched line by line on stderr."""
    args = ("schedule", "--cron", "* * * * * *", *schedule_options, "--", "batch", src, "--out", out)
    proc = subprocess.Popen(
        dbgauto_cmd(*args, "--no-convert", "--no-report"),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    return proc, LineWatch(proc.stderr)


class FakeTime:
    """The loop's injected clock and sleep: time moves only when the loop sleeps or a job says it ran for a while,
    so every start time below is exact (no real waiting, nothing depends on how fast this machine is)."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert 0 < seconds <= MAX_SLEEP  # never a busy loop, never longer than the re-check interval
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)

    def spend(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


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


T0 = datetime(2026, 3, 1, 2, 0, 0, 400_000, tzinfo=UTC)  # 0.4 s past a whole second


@pytest.mark.parametrize(
    ("policy", "expected_starts"),
    [
        # the first run (3.3 s) misses the fire times :02, :03 and :04: one run at once (04.3), not three,
        # then the schedule resumes at the next fire time after that run's slot (:05)
        ("run-once", [1.0, 4.3, 5.0]),
        # skip: nothing at once; the next fire time after the long run ended (:05), then :06
        ("skip", [1.0, 5.0, 6.0]),
    ],
)
def test_missed_fire_times_while_a_run_is_long(policy: str, expected_starts: list[float]) -> None:
    """A run longer than the interval: run-once starts one catch-up run at once; skip waits for a fire time."""
    fake = FakeTime(T0)
    starts: list[float] = []
    durations = iter([3.3, 0.2, 0.2])

    def job() -> int:
        starts.append(round((fake.now - T0.replace(microsecond=0)).total_seconds(), 6))
        fake.spend(next(durations))
        return 7

    loop = ScheduleLoop(CronSchedule("* * * * * *"), job, missed=policy, max_runs=3, clock=fake.clock, sleep=fake.sleep)
    assert loop.run() == 7  # the last run's exit code
    assert loop.runs == 3
    assert starts == expected_starts


def test_nightly_schedule_sleeps_in_bounded_steps_until_the_fire_time() -> None:
    """02:00 nightly, started at 01:58:59.5: the loop re-checks the clock at least every MAX_SLEEP seconds (so a
    suspend or clock change is noticed) and starts the job exactly at the fire time."""
    fake = FakeTime(datetime(2026, 3, 1, 1, 58, 59, 500_000, tzinfo=UTC))
    started: list[datetime] = []

    def job() -> int:
        started.append(fake.now)
        return 0

    loop = ScheduleLoop(CronSchedule("0 2 * * *"), job, max_runs=1, clock=fake.clock, sleep=fake.sleep)
    assert loop.run() == 0
    assert started == [datetime(2026, 3, 1, 2, 0, tzinfo=UTC)]
    assert sum(fake.sleeps) == pytest.approx(60.5)
    assert len(fake.sleeps) == 3  # 30 + 30 + 0.5


def test_a_clock_jump_past_fire_times_runs_once() -> None:
    """The machine slept through fire times (the clock jumps while the loop sleeps): one run, not one per slot."""
    fake = FakeTime(T0)
    starts: list[datetime] = []

    def sleep_through_the_night(seconds: float) -> None:
        fake.sleep(seconds)
        if len(fake.sleeps) == 1:
            fake.spend(3600)  # resumed an hour later: the 02:00:01 .. 03:00:01 fire times were all missed

    def job() -> int:
        starts.append(fake.now)
        return 0

    loop = ScheduleLoop(CronSchedule("* * * * * *"), job, max_runs=2, clock=fake.clock, sleep=sleep_through_the_night)
    loop.run()
    wake = T0.replace(microsecond=0) + timedelta(seconds=3601)
    assert starts == [wake, wake + timedelta(seconds=1)]  # run at wake-up, then the normal cadence


def test_schedule_every_second_runs_twice_and_processes_new_files_only(tmp_path: Path) -> None:
    src = tmp_path / "src"
    first_dumps = [synth_dump(src / f"d{i}.dmp", "x64", 6, 0xD1 + i) for i in range(3)]
    out = tmp_path / "out"
    proc, log = _every_second(src, out, "--max-runs", "2")
    try:
        # run 1 has listed its files once it logs what it found; the late dump is written after that event
        discovered = log.wait_for(r"run 1: \d+ dump\(s\) found")
        late = synth_dump(src / "late.dmp", "x86pae", 5, 0x9F) if discovered else None
        proc.wait(timeout=90)
    finally:
        proc.kill()
    stderr = log.text()
    assert discovered is not None, stderr
    assert "run 1: 3 dump(s) found, 0 unchanged, 3 to process" in discovered
    assert late is not None
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
    proc, log = _every_second(synth_tree.root, out)
    try:
        # run 1 is under way (its batch has listed the dumps and is processing them) when SIGTERM arrives
        assert log.wait_for(r"run 1: \d+ dump\(s\) found") is not None, log.text()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    stderr = log.text()
    assert proc.returncode == 1, stderr  # the last (only) run's status: the broken dumps failed
    assert "stop requested" in stderr
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        runs = cat.runs()
        assert len(runs) == 1
        assert runs[0]["status"] == "completed"  # SIGTERM did not interrupt the batch itself
