"""``dbgauto schedule --cron EXPR [--once] -- batch ...``: run a dbgauto command on a cron schedule."""

from __future__ import annotations

import logging
import sys
from datetime import datetime

import click

from dbgauto.batch.schedule import MISSED_POLICIES, CronSchedule, ScheduleLoop, run_command

NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The cron nicknames (Vixie cron), as the 5-field expressions they stand for."""


def _schedule(expr: str) -> CronSchedule:
    """The schedule for EXPR (a nickname or 5/6 fields); a usage error when it is invalid or never fires."""
    text = NICKNAMES.get(expr.strip().lower(), expr)
    try:
        schedule = CronSchedule(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cron") from None
    try:
        schedule.next_after(datetime.now().astimezone())
    except Exception:  # croniter gives up searching (CroniterBadDateError): a date that never comes
        raise click.BadParameter(f"{expr!r} never fires (no such date in any year)", param_hint="--cron") from None
    return schedule


@click.command("schedule", context_settings={"ignore_unknown_options": True})
@click.option(
    "--cron",
    "cron_expr",
    metavar="EXPR",
    help='Cron expression in local time: 5 fields ("0 2 * * *"), 6 with seconds first, or @hourly, @daily, '
    "@weekly, @monthly, @yearly. Not needed with --once.",
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
@click.option(
    "--print-task",
    type=click.Choice(["schtasks", "xml"]),
    is_flag=False,
    flag_value="schtasks",
    default=None,
    help="Print a Windows Task Scheduler registration instead of running: a schtasks command line (default) "
    "or a task XML. Cron forms: M H * * * | M H * * D,D | M H N * * | M * * * * | M */N * * * | */N * * * *.",
)
@click.option("--task-name", default="dbgauto nightly batch", show_default=True, help="Task name for --print-task.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def command(
    cron_expr: str | None,
    once: bool,
    missed: str,
    max_runs: int | None,
    print_task: str | None,
    task_name: str,
    args: tuple[str, ...],
) -> None:
    """Run `dbgauto batch ...` (given after `--`) at every fire time of EXPR, or once with --once.

    Long-running: SIGTERM (Windows: Ctrl+Break, console close) stops it after the current run finishes;
    Ctrl-C also interrupts the running batch (the next run resumes it). On Windows prefer Task Scheduler:
    --print-task prints the registration for the same schedule. Each run is a fresh child process; the
    batch lock prevents two runs on one output folder from overlapping.
    Exit status: that of the last run.
    """
    argv = list(args)
    if not argv:
        raise click.UsageError(
            "give the command after `--`, e.g. dbgauto schedule --cron '0 2 * * *' -- batch DIR --out OUT"
        )
    if argv[0] != "batch":
        raise click.UsageError(f"only `batch` may follow `--` (got {argv[0]!r})")
    if cron_expr is None and not once:
        raise click.UsageError("give --cron EXPR (or --once to run the batch once now)")
    schedule = _schedule(cron_expr) if cron_expr is not None else None
    if print_task is not None:
        if cron_expr is None:
            raise click.UsageError("--print-task needs --cron EXPR (the schedule to register)")
        _print_task(print_task, NICKNAMES.get(cron_expr.strip().lower(), cron_expr), task_name, argv)
        return
    if once:
        sys.exit(run_command(argv))
    assert schedule is not None
    logging.getLogger("dbgauto.batch.schedule").setLevel(min(logging.INFO, logging.getLogger().getEffectiveLevel()))
    loop = ScheduleLoop(schedule, lambda: run_command(argv), missed=missed, max_runs=max_runs)
    sys.exit(loop.run())


def _print_task(fmt: str, cron_expr: str, name: str, argv: list[str]) -> None:
    from datetime import date

    from dbgauto.batch.wintask import schtasks_command_line, task_xml, trigger_from_cron

    try:
        trigger = trigger_from_cron(cron_expr)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cron") from None
    if fmt == "xml":
        click.echo(task_xml(name, trigger, sys.executable, argv, start_date=date.today().isoformat()), nl=False)
    else:
        click.echo(schtasks_command_line(name, trigger, sys.executable, argv))
