"""``dbgauto schedule --cron EXPR [--once] -- batch ...``: run a dbgauto command on a cron schedule."""

from __future__ import annotations

import logging
import sys

import click

from dbgauto.batch.schedule import MISSED_POLICIES, CronSchedule, ScheduleLoop, run_command


@click.command("schedule", context_settings={"ignore_unknown_options": True})
@click.option(
    "--cron",
    "cron_expr",
    required=True,
    metavar="EXPR",
    help='Cron expression in local time: 5 fields ("0 2 * * *"), or 6 with seconds first.',
)
@click.option("--once", is_flag=True, help="Run the command once now and exit with its status (for OS schedulers).")
@click.option(
    "--missed",
    type=click.Choice(MISSED_POLICIES),
    default="run-once",
    show_default=True,
    help="Fire times missed during a long run or a sleep: run once at once, or skip to the next.",
)
@click.option("--max-runs", type=click.IntRange(min=1), help="Exit after this many runs.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def command(cron_expr: str, once: bool, missed: str, max_runs: int | None, args: tuple[str, ...]) -> None:
    """Run `dbgauto ARGS...` (normally `batch ...`, after `--`) at every fire time of EXPR.

    Long-running: SIGTERM stops it after the current run finishes; Ctrl-C also interrupts the running
    batch (the next run resumes it). Each run is a fresh child process; the batch lock prevents two runs
    on one output folder from overlapping.
    Exit status: that of the last run.
    """
    try:
        schedule = CronSchedule(cron_expr)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cron") from None
    argv = list(args)
    if not argv or argv[0] not in ("batch",):
        raise click.UsageError(
            "give the command after `--`, e.g. dbgauto schedule --cron '0 2 * * *' -- batch DIR --out OUT"
        )
    if once:
        sys.exit(run_command(argv))
    logging.getLogger("dbgauto.batch.schedule").setLevel(min(logging.INFO, logging.getLogger().getEffectiveLevel()))
    loop = ScheduleLoop(schedule, lambda: run_command(argv), missed=missed, max_runs=max_runs)
    sys.exit(loop.run())
