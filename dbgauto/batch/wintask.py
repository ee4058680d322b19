"""Register a batch with the Windows Task Scheduler: a ``schtasks /Create`` command line or a task XML.

Why: on Windows the OS scheduler is the recommended way to run nightly batches (it survives logoff and
reboots, runs without a console, and its "End" sends Ctrl+Break which ``dbgauto batch`` treats as a stop).
``dbgauto schedule --print-task`` turns the same cron expression the long-running loop takes into a
trigger Task Scheduler understands; it only prints, it never registers anything itself.

Cron forms that map exactly onto a Task Scheduler trigger (5 fields, local time):
``M H * * *`` (daily), ``M H * * D[,D...]`` (weekly on those days), ``M H N * *`` (monthly on day N),
``M * * * *`` (hourly at minute M), ``M */N * * *`` (every N hours), ``*/N * * * *`` (every N minutes).
Anything else raises ValueError saying so (use the long-running ``dbgauto schedule`` loop for those).
The action runs ``python.exe -m dbgauto batch ...`` with the interpreter that printed the task.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape

__all__ = ["TaskTrigger", "schtasks_argv", "schtasks_command_line", "task_xml", "trigger_from_cron"]

_DAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_XML_DAYS: Final = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_NUM: Final = re.compile(r"\d{1,2}")
_EVERY: Final = re.compile(r"\*/(\d{1,3})")


@dataclass(frozen=True, slots=True)
class TaskTrigger:
    """One Task Scheduler trigger: schedule kind (schtasks /SC), modifier (/MO), start time, days."""

    kind: str  # MINUTE | HOURLY | DAILY | WEEKLY | MONTHLY
    start: str  # HH:MM
    modifier: int = 1
    days: tuple[int, ...] = ()  # WEEKLY: 0=Sunday..6; MONTHLY: day of month


def _num(text: str, lo: int, hi: int, what: str, expr: str) -> int:
    if not _NUM.fullmatch(text) or not lo <= int(text) <= hi:
        raise ValueError(f"{expr!r}: {what} {text!r} is not a number from {lo} to {hi}")
    return int(text)


def trigger_from_cron(expr: str) -> TaskTrigger:
    """The Task Scheduler trigger equal to a 5-field cron expression (module doc lists the forms)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{expr!r}: Task Scheduler triggers are built from 5-field cron expressions")
    minute, hour, dom, month, dow = fields
    unsupported = ValueError(
        f"{expr!r}: no single Task Scheduler trigger matches this cron expression; use one of the forms in "
        "`dbgauto schedule --help`, or run the long-running `dbgauto schedule` loop instead"
    )
    if month != "*":
        raise unsupported
    every = _EVERY.fullmatch(minute)
    if every and (hour, dom, dow) == ("*", "*", "*"):
        n = _num(every.group(1), 1, 59, "minute step", expr)
        return TaskTrigger("MINUTE", "00:00", n)
    m = _num(minute, 0, 59, "minute", expr)
    if hour == "*" and (dom, dow) == ("*", "*"):
        return TaskTrigger("HOURLY", f"00:{m:02d}", 1)
    every = _EVERY.fullmatch(hour)
    if every and (dom, dow) == ("*", "*"):
        return TaskTrigger("HOURLY", f"00:{m:02d}", _num(every.group(1), 1, 23, "hour step", expr))
    h = _num(hour, 0, 23, "hour", expr)
    start = f"{h:02d}:{m:02d}"
    if dom == "*" and dow == "*":
        return TaskTrigger("DAILY", start)
    if dom == "*":
        days = sorted({_num(d, 0, 7, "day of week", expr) % 7 for d in dow.split(",")})
        return TaskTrigger("WEEKLY", start, 1, tuple(days))
    if dow == "*":
        return TaskTrigger("MONTHLY", start, 1, (_num(dom, 1, 31, "day of month", expr),))
    raise unsupported


def schtasks_argv(name: str, trigger: TaskTrigger, python: str, args: Sequence[str]) -> list[str]:
    """``schtasks /Create`` arguments (Microsoft's schtasks create reference: /SC /MO /D /ST /TR /F)."""
    action = subprocess.list2cmdline([python, "-m", "dbgauto", *args])
    argv = ["schtasks", "/Create", "/TN", name, "/SC", trigger.kind]
    if trigger.modifier != 1:
        argv += ["/MO", str(trigger.modifier)]
    if trigger.kind == "WEEKLY":
        argv += ["/D", ",".join(_DAYS[d] for d in trigger.days)]
    elif trigger.kind == "MONTHLY":
        argv += ["/D", str(trigger.days[0])]
    argv += ["/ST", trigger.start, "/TR", action, "/F"]
    return argv


def schtasks_command_line(name: str, trigger: TaskTrigger, python: str, args: Sequence[str]) -> str:
    """:func:`schtasks_argv` quoted for cmd.exe / PowerShell (Windows argument rules)."""
    return subprocess.list2cmdline(schtasks_argv(name, trigger, python, args))


def task_xml(name: str, trigger: TaskTrigger, python: str, args: Sequence[str], *, start_date: str) -> str:
    """A Task Scheduler 1.2 task definition (``schtasks /Create /XML FILE /TN NAME`` or Import Task...)."""
    begin = f"{start_date}T{trigger.start}:00"
    if trigger.kind == "MINUTE" or trigger.kind == "HOURLY":
        unit = "M" if trigger.kind == "MINUTE" else "H"
        inner = (
            f"<Repetition><Interval>PT{trigger.modifier}{unit}</Interval><StopAtDurationEnd>false</StopAtDurationEnd>"
            "</Repetition><ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay>"
        )
    elif trigger.kind == "DAILY":
        inner = "<ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay>"
    elif trigger.kind == "WEEKLY":
        days = "".join(f"<{_XML_DAYS[d]} />" for d in trigger.days)
        inner = f"<ScheduleByWeek><DaysOfWeek>{days}</DaysOfWeek><WeeksInterval>1</WeeksInterval></ScheduleByWeek>"
    else:
        months = "".join(f"<{m} />" for m in _MONTHS)
        inner = (
            f"<ScheduleByMonth><DaysOfMonth><Day>{trigger.days[0]}</Day></DaysOfMonth>"
            f"<Months>{months}</Months></ScheduleByMonth>"
        )
    arguments = subprocess.list2cmdline(["-m", "dbgauto", *args])
    return f"""<?xml version="1.0"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>{escape(name)}: dbgauto batch (printed by dbgauto schedule --print-task)</Description>
  </RegistrationInfo>
  <Triggers>
    <CalendarTrigger>
      <StartBoundary>{begin}</StartBoundary>
      <Enabled>true</Enabled>
      {inner}
    </CalendarTrigger>
  </Triggers>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(python)}</Command>
      <Arguments>{escape(arguments)}</Arguments>
    </Exec>
  </Actions>
</Task>
"""
