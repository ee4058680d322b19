"""``dbgauto schedule`` says exactly what is wrong: nicknames accepted, --once needs no --cron, only batch after
``--``, and a cron expression that never fires is a usage error (croniter's CroniterBadDateError never shows)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from dbgauto.cli import cli
from dbgauto.cli.schedule import _schedule


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["schedule", *args])
    return res.exit_code, res.output + (res.stderr if res.stderr_bytes else "")


def test_nicknames() -> None:
    start = datetime(2026, 3, 4, 10, 30).astimezone()
    assert _schedule("@daily").next_after(start).replace(tzinfo=None) == datetime(2026, 3, 5, 0, 0)
    assert _schedule("@hourly").next_after(start).replace(tzinfo=None) == datetime(2026, 3, 4, 11, 0)
    assert _schedule("@weekly").next_after(start).weekday() == 6  # Sunday (cron day 0)
    assert _schedule("@monthly").next_after(start).replace(tzinfo=None) == datetime(2026, 4, 1, 0, 0)
    assert _schedule("@yearly").next_after(start).replace(tzinfo=None) == datetime(2027, 1, 1, 0, 0)


def test_never_firing_cron_is_a_usage_error() -> None:
    code, out = _run("--cron", "0 2 30 2 *", "--", "batch", "x", "--out", "y")
    assert code == 2
    assert "never fires" in out
    assert "CroniterBadDateError" not in out


def test_only_batch_after_double_dash() -> None:
    code, out = _run("--cron", "@daily", "--", "info", "x")
    assert code == 2
    assert "only `batch` may follow `--` (got 'info')" in out


def test_cron_or_once_needed() -> None:
    code, out = _run("--", "batch", "x", "--out", "y")
    assert code == 2
    assert "--cron EXPR (or --once" in out


def test_once_without_cron_runs_the_batch(tmp_path: Path) -> None:
    """The batch runs (and fails on its own missing source, exit 2): no complaint about --cron."""
    code, out = _run("--once", "--", "batch", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert code == 2
    assert "--cron" not in out
