"""Run a command on a cron schedule, as a long-running process (``dbgauto schedule``).

Why a small loop over croniter and not APScheduler: the OS scheduler (Task Scheduler, cron, systemd timers)
is the recommended way; this loop exists for hosts where a long-running process is easier, and the batch it
runs is idempotent and locked, so the loop needs no persistence of its own.

Cron expressions: 5 fields (minute resolution) or 6 fields with **seconds first** (``*/10 * * * * *``),
evaluated in local time. Each run is a child process (a fresh interpreter each night: nothing leaks).

Missed runs (policy ``run-once``, the default): when one or more fire times passed while a run was still
going or the machine slept, the command runs **once** at once, then the schedule resumes from the next fire
time after now; it never runs back-to-back for each missed slot. Policy ``skip`` waits for the next fire
time instead. Fire times before the process started are not caught up. Overlap is impossible within one
loop (runs are sequential); against other processes the batch's own lock decides (the second run exits
with a clear message, or waits when ``--wait`` is in the batch arguments).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from types import FrameType

from croniter import croniter

from dbgauto.util.signals import on_stop

__all__ = ["MISSED_POLICIES", "CronSchedule", "ScheduleLoop", "run_command"]

log = logging.getLogger(__name__)

MISSED_POLICIES = ("run-once", "skip")
MAX_SLEEP = 30.0  # re-check the wall clock at least this often (suspend/resume, clock changes)


class CronSchedule:
    """A validated cron expression; 6 fields = seconds first."""

    def __init__(self, expr: str) -> None:
        fields = expr.split()
        if len(fields) not in (5, 6):
            raise ValueError(f"{expr!r}: a cron expression has 5 fields (or 6 with seconds first), not {len(fields)}")
        self.expr = " ".join(fields)
        self.with_seconds = len(fields) == 6
        try:
            croniter(self.expr, datetime.now().astimezone(), second_at_beginning=self.with_seconds)
        except (ValueError, KeyError) as exc:  # croniter's CroniterError subclasses ValueError
            raise ValueError(f"{expr!r}: not a valid cron expression ({exc})") from None

    def next_after(self, when: datetime) -> datetime:
        """The first fire time strictly after ``when`` (an aware datetime)."""
        it = croniter(self.expr, when, second_at_beginning=self.with_seconds)
        nxt: datetime = it.get_next(datetime)
        return nxt


def run_command(argv: Sequence[str]) -> int:
    """Run ``dbgauto ARGV...`` in a child interpreter; its exit code."""
    cmd = [sys.executable, "-m", "dbgauto", *argv]
    log.info("running: %s", " ".join(cmd))
    return subprocess.call(cmd)


class ScheduleLoop:
    """Sleep until each fire time, run the job, apply the missed-run policy; stop on any stop request.

    Stop requests (:func:`dbgauto.util.signals.on_stop`): SIGTERM/SIGINT, and on Windows Ctrl+C,
    Ctrl+Break (SIGBREAK, what Task Scheduler's "End" and service wrappers send) and console close.
    """

    def __init__(
        self,
        schedule: CronSchedule,
        job: Callable[[], int],
        *,
        missed: str = "run-once",
        max_runs: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if missed not in MISSED_POLICIES:
            raise ValueError(f"missed-run policy must be one of {MISSED_POLICIES}")
        self.schedule = schedule
        self.job = job
        self.missed = missed
        self.max_runs = max_runs
        self.clock = clock
        self.sleep = sleep
        self.runs = 0
        self.last_code = 0
        self.stopping = False

    def stop(self, signum: int | str | None = None, frame: FrameType | None = None) -> None:
        why = f" ({signum})" if isinstance(signum, str) else ""
        log.info("stop requested%s; exiting after the current run", why)
        self.stopping = True

    def _sleep_until(self, when: datetime) -> None:
        while not self.stopping:
            remaining = (when - self.clock()).total_seconds()
            if remaining <= 0:
                return
            self.sleep(min(remaining, MAX_SLEEP))

    def run(self) -> int:
        """Loop until stopped or ``max_runs`` runs are done; the last run's exit code."""
        restore = on_stop(self.stop)  # SIGTERM/SIGINT; Ctrl+C, Ctrl+Break, console close on Windows
        try:
            due = self.schedule.next_after(self.clock())
            log.info("schedule %r: next run at %s", self.schedule.expr, due.isoformat())
            while not self.stopping:
                self._sleep_until(due)
                if self.stopping:
                    break
                started = max(due, self.clock())  # a late start (the machine slept) covers the slots it missed
                self.last_code = self.job()
                self.runs += 1
                log.info("run %d finished with exit code %d", self.runs, self.last_code)
                if self.max_runs is not None and self.runs >= self.max_runs:
                    break
                due = self._next_due(started)
        finally:
            restore()
        return self.last_code

    def _next_due(self, started: datetime) -> datetime:
        """The next fire time after the run that started at ``started``; slots missed while it ran follow the
        missed-run policy (run once now, or skip)."""
        nxt = self.schedule.next_after(started)
        now = self.clock()
        if nxt > now:
            log.info("next run at %s", nxt.isoformat())
            return nxt
        if self.missed == "run-once":
            log.info("missed fire time(s) since %s; running once now", nxt.isoformat())
            return now
        nxt = self.schedule.next_after(now)
        log.info("missed fire time(s); skipped (policy skip); next run at %s", nxt.isoformat())
        return nxt
