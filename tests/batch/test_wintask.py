"""``dbgauto schedule --print-task``: cron → Task Scheduler trigger, schtasks command line, task XML.

Expectations from Microsoft's schtasks /Create reference (/SC MINUTE|HOURLY|DAILY|WEEKLY|MONTHLY, /MO, /D
MON,FRI or a day number, /ST HH:MM, /TR, /F) and the Task Scheduler 1.2 schema (CalendarTrigger with
ScheduleByDay / ScheduleByWeek / ScheduleByMonth, Repetition Interval as an ISO 8601 duration).
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from dbgauto.batch.wintask import TaskTrigger, schtasks_argv, task_xml, trigger_from_cron

NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
PY = r"C:\Program Files\Python311\python.exe"


@pytest.mark.parametrize(
    ("cron", "trigger", "tail"),
    [
        ("0 2 * * *", TaskTrigger("DAILY", "02:00"), ["/SC", "DAILY", "/ST", "02:00"]),
        ("30 2 * * 1,5", TaskTrigger("WEEKLY", "02:30", 1, (1, 5)), ["/SC", "WEEKLY", "/D", "MON,FRI", "/ST", "02:30"]),
        ("15 3 * * 0,7", TaskTrigger("WEEKLY", "03:15", 1, (0,)), ["/SC", "WEEKLY", "/D", "SUN", "/ST", "03:15"]),
        ("0 4 1 * *", TaskTrigger("MONTHLY", "04:00", 1, (1,)), ["/SC", "MONTHLY", "/D", "1", "/ST", "04:00"]),
        ("5 * * * *", TaskTrigger("HOURLY", "00:05"), ["/SC", "HOURLY", "/ST", "00:05"]),
        ("0 */6 * * *", TaskTrigger("HOURLY", "00:00", 6), ["/SC", "HOURLY", "/MO", "6", "/ST", "00:00"]),
        ("*/15 * * * *", TaskTrigger("MINUTE", "00:00", 15), ["/SC", "MINUTE", "/MO", "15", "/ST", "00:00"]),
    ],
)
def test_cron_forms(cron: str, trigger: TaskTrigger, tail: list[str]) -> None:
    assert trigger_from_cron(cron) == trigger
    argv = schtasks_argv("dbgauto nightly", trigger, PY, ["batch", r"\\filer\crashes", "--out", r"D:\out"])
    assert argv[:4] == ["schtasks", "/Create", "/TN", "dbgauto nightly"]
    assert argv[4:-3] == tail
    assert argv[-3] == "/TR"
    assert argv[-2] == rf'"{PY}" -m dbgauto batch \\filer\crashes --out D:\out'
    assert argv[-1] == "/F"


@pytest.mark.parametrize("cron", ["0 2 * 1 *", "0 2 1 * 1", "0 2-4 * * *", "*/10 2 * * *", "0 25 * * *", "* * * *"])
def test_no_single_trigger_is_refused(cron: str) -> None:
    with pytest.raises(ValueError, match=cron.replace("*", r"\*")):
        trigger_from_cron(cron)


def test_task_xml_is_a_task_scheduler_definition() -> None:
    argv = ["batch", r"C:\Windows\Minidump", "--out", r"D:\crash reports & more"]
    root = ET.fromstring(task_xml("dbgauto", trigger_from_cron("30 2 * * 1,5"), PY, argv, start_date="2026-03-01"))
    assert root.tag == "{" + NS["t"] + "}Task"
    cal = root.find("t:Triggers/t:CalendarTrigger", NS)
    assert cal is not None
    assert cal.findtext("t:StartBoundary", namespaces=NS) == "2026-03-01T02:30:00"
    days = cal.find("t:ScheduleByWeek/t:DaysOfWeek", NS)
    assert days is not None
    assert [d.tag.split("}")[1] for d in days] == ["Monday", "Friday"]
    assert root.findtext("t:Actions/t:Exec/t:Command", namespaces=NS) == PY
    assert (
        root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=NS)
        == r'-m dbgauto batch C:\Windows\Minidump --out "D:\crash reports & more"'
    )
    assert root.findtext("t:Settings/t:MultipleInstancesPolicy", namespaces=NS) == "IgnoreNew"
    every = ET.fromstring(task_xml("x", trigger_from_cron("*/15 * * * *"), PY, ["batch"], start_date="2026-03-01"))
    assert every.findtext("t:Triggers/t:CalendarTrigger/t:Repetition/t:Interval", namespaces=NS) == "PT15M"


def test_cli_prints_without_running(tmp_path: object) -> None:
    base = [sys.executable, "-m", "dbgauto", "schedule", "--cron", "0 2 * * *"]
    res = subprocess.run([*base, "--print-task", "--", "batch", "SRC", "--out", "OUT"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith('schtasks /Create /TN "dbgauto nightly batch" /SC DAILY /ST 02:00 /TR ')
    xml = subprocess.run([*base, "--print-task", "xml", "--", "batch", "S"], capture_output=True, text=True)
    assert ET.fromstring(xml.stdout).tag.endswith("Task")
    bad = subprocess.run(
        [sys.executable, "-m", "dbgauto", "schedule", "--cron", "0 2 * 1 *", "--print-task", "--", "batch", "S"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "no single Task Scheduler trigger" in bad.stderr
