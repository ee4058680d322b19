"""The open banner of cdb/kd/WinDbg and ``vertarget`` (same system lines; MEX ``!di`` prints them too).

Lines are matched one by one wherever they appear, so extra blank lines (blog damage), a missing version line
(WinDbg Preview pastes) or leading noise (``ERROR: FindPlugIns``, Extensions Gallery preamble) do not matter.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .analyze import PROBABLY_CAUSED_BY_RE as _PROBABLY_RE
from .bugcheck import parse_bugcheck_summary
from .model import BannerInfo, OsInfo, ProbableCause, VertargetInfo, parse_hex

# cdb/kd/WinDbg print "Microsoft (R) Windows ..."; the native engine's banner (dbgauto shell) "dbgauto Native ...".
_VERSION_RE = re.compile(r"^\s*(?:Microsoft \(R\) Windows|dbgauto Native) Debugger Version (\S+)(?:\s+(\w+))?")
_DUMP_FILE_RE = re.compile(r"^\s*Loading Dump File \[(.*)\]\s*$")
_DUMP_KIND_RE = re.compile(r"^\s*((?:[A-Za-z-]+ )*Dump File): (.+?)\s*$")
_SYMPATH_RE = re.compile(r"^\s*Symbol search path is:(.*)$")
_EXEPATH_RE = re.compile(r"^\s*Executable search path is:(.*)$")
_OS_RE = re.compile(
    r"^\s*(?P<name>Windows.*?) (?:Kernel )?Version (?P<build>\d{4,})(?: \((?P<sp>[^)]*)\))?"
    r"(?: (?P<mp>MP|UP))?(?: \((?P<procs>\d+) procs?\))?(?: (?P<free>Free|Checked))?(?P<arch>.*)$"
)
_PRODUCT_RE = re.compile(r"^\s*Product: ([^,]+?)(?:, suite: (.*?))?\s*$")
_BUILT_BY_RE = re.compile(r"^\s*Built by: (.*?)\s*$")
_EDITION_RE = re.compile(r"^\s*Edition build lab: (.*?)\s*$")
_MACHINE_RE = re.compile(r"^\s*Machine Name:(.*)$")
_KBASE_RE = re.compile(r"Kernel base = (?:0x)?([0-9a-fA-F`]+)\s+PsLoadedModuleList = (?:0x)?([0-9a-fA-F`]+)")
_SESSION_RE = re.compile(r"^\s*Debug session time: (.*?)\s*$")
_UPTIME_RE = re.compile(r"^\s*System Uptime: (.*?)\s*$")
_FOLLOWUP_RE = re.compile(r"^\s*Followup:\s*(\S.*?)\s*$")
_TRUNCATED_RE = re.compile(r"Dump file has been truncated", re.IGNORECASE)
_EXTRA_RE = re.compile(r"^\s*([A-Za-z]+(?: [A-Za-z]+)*)\s*[:=]\s+(.*)$")

_TIME_RE = re.compile(
    r"^(?:\w{3} )?(?P<mon>\w{3})\s+(?P<day>\d{1,2}) (?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<frac>\d+))? "
    r"(?P<year>\d{4})(?: \((?:UTC|GMT)\s*(?P<sign>[+-])\s*(?P<oh>\d{1,2})(?::(?P<om>\d{2}))?\))?"
)
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_UPTIME_VALUE_RE = re.compile(r"^(\d+) days? (\d+):(\d{2}):(\d{2})(?:\.(\d+))?")

# Builds each OS name can carry. The debugger's name comes from its own table; a build outside the range means an
# old debugger named a newer system (6.12 → "Windows 7 Kernel Version 22621").
_NAME_BUILDS: tuple[tuple[str, int, int], ...] = (
    ("Windows 2000", 2195, 2195),
    ("Windows XP", 2600, 3790),
    ("Windows Server 2003", 3790, 3790),
    ("Windows Vista", 6000, 6002),
    ("Windows Server 2008/Windows Vista", 6000, 6003),
    ("Windows 7", 7600, 7601),
    ("Windows 8.1", 9600, 9600),
    ("Windows 8", 9200, 9200),
    ("Windows 10", 9841, 10**6),
    ("Windows 11", 22000, 10**6),
)


def _variety(kind: str, kind_detail: str) -> str | None:
    if kind.lower().startswith("user"):
        return "user"
    text = kind_detail.lower()
    if "only registers and stack trace" in text:
        return "small"
    if "full address space" in text:
        return "complete"
    if "kernel address space" in text:
        return "kernel"
    return None


def parse_os_line(line: str) -> OsInfo | None:
    """``Windows 10 Kernel Version 19041 MP (3 procs) Free x64`` → OsInfo; None when the line is not one."""
    m = _OS_RE.match(line)
    if not m:
        return None
    name, build = m.group("name").strip(), int(m.group("build"))
    reliable = True
    for known, low, high in _NAME_BUILDS:
        if name == known:
            reliable = low <= build <= high
            break
    mp = m.group("mp")
    procs = int(m.group("procs")) if m.group("procs") else (1 if mp == "UP" else None)
    arch = m.group("arch").strip().removesuffix(" compatible").strip()
    free = m.group("free")
    return OsInfo(
        raw=line.strip(),
        name=name,
        build=build,
        service_pack=m.group("sp"),
        multiprocessor=None if mp is None else mp == "MP",
        processors=procs,
        free=None if free is None else free == "Free",
        arch=arch or None,
        name_reliable=reliable,
    )


def parse_session_time(raw: str) -> datetime | None:
    """``Thu Oct  7 20:33:12.945 2021 (UTC + 9:00)`` → aware UTC datetime; None without a zone or when unreadable."""
    m = _TIME_RE.match(raw.strip())
    if not m or m.group("sign") is None or m.group("mon") not in _MONTHS:
        return None
    frac = (m.group("frac") or "0")[:6].ljust(6, "0")
    try:
        local = datetime(
            int(m.group("year")),
            _MONTHS[m.group("mon")],
            int(m.group("day")),
            int(m.group("h")),
            int(m.group("m")),
            int(m.group("s")),
            int(frac),
        )
    except ValueError:
        return None
    offset = timedelta(hours=int(m.group("oh")), minutes=int(m.group("om") or 0))
    if m.group("sign") == "-":
        offset = -offset
    return (local - offset).replace(tzinfo=UTC)


def parse_session_time_local(raw: str) -> datetime | None:
    """The debug session time as printed when it carries no zone (``Mon Jul 17 11:51:58 2006``, XP-era WinDbg):
    a naive datetime in the debugger machine's unknown local time; None when unreadable."""
    m = _TIME_RE.match(raw.strip())
    if not m or m.group("mon") not in _MONTHS:
        return None
    frac = (m.group("frac") or "0")[:6].ljust(6, "0")
    try:
        return datetime(
            int(m.group("year")),
            _MONTHS[m.group("mon")],
            int(m.group("day")),
            int(m.group("h")),
            int(m.group("m")),
            int(m.group("s")),
            int(frac),
        )
    except ValueError:
        return None


def parse_uptime(raw: str) -> float | None:
    """``0 days 0:00:54.755`` → 54.755 seconds; None when not in that shape (e.g. "not available")."""
    m = _UPTIME_VALUE_RE.match(raw.strip())
    if not m:
        return None
    days, hours, minutes, seconds = (int(m.group(i)) for i in range(1, 5))
    frac = float("0." + m.group(5)) if m.group(5) else 0.0
    return round(days * 86400 + hours * 3600 + minutes * 60 + seconds + frac, 6)


def _system_facts(lines: list[str]) -> dict[str, object]:
    """The lines vertarget and the banner share, read into a dict of SystemLines field values."""
    facts: dict[str, object] = {}
    for line in lines:
        if not line or line.isspace():  # most lines of a long log; skipping them keeps the loop cheap
            continue
        if "os" not in facts and (os_info := parse_os_line(line)):
            facts["os"] = os_info
        elif (m := _PRODUCT_RE.match(line)) and "product" not in facts:
            facts["product"] = m.group(1).strip()
            facts["suite"] = tuple(m.group(2).split()) if m.group(2) else ()
        elif (m := _BUILT_BY_RE.match(line)) and "built_by" not in facts:
            facts["built_by"] = m.group(1)
        elif (m := _EDITION_RE.match(line)) and "edition_build_lab" not in facts:
            facts["edition_build_lab"] = m.group(1)
        elif (m := _MACHINE_RE.match(line)) and "machine_name" not in facts:
            facts["machine_name"] = m.group(1).strip().strip('"')
        elif (m := _KBASE_RE.search(line)) and "kernel_base" not in facts:
            facts["kernel_base"] = parse_hex(m.group(1))
            facts["ps_loaded_module_list"] = parse_hex(m.group(2))
        elif (m := _SESSION_RE.match(line)) and "debug_session_time_raw" not in facts:
            facts["debug_session_time_raw"] = m.group(1)
            facts["debug_session_time"] = parse_session_time(m.group(1))
        elif (m := _UPTIME_RE.match(line)) and "uptime_raw" not in facts:
            facts["uptime_raw"] = m.group(1)
            facts["uptime_seconds"] = parse_uptime(m.group(1))
    return facts


def parse_banner(text: str) -> BannerInfo:
    """Facts of the text the debugger prints when it opens a dump (before the first prompt)."""
    lines = text.splitlines()
    facts = _system_facts(lines)
    warnings: list[str] = []
    for line in lines:
        if not line or line.isspace():
            continue
        if (m := _VERSION_RE.match(line)) and "debugger_version" not in facts:
            facts["debugger_version"] = m.group(1)
            facts["debugger_arch"] = m.group(2)
        elif (m := _DUMP_FILE_RE.match(line)) and "dump_file" not in facts:
            facts["dump_file"] = m.group(1)
        elif (m := _DUMP_KIND_RE.match(line)) and "dump_kind" not in facts and "Loading" not in line:
            facts["dump_kind"] = m.group(1)
            facts["dump_kind_line"] = line.strip()
            facts["dump_variety"] = _variety(m.group(1), m.group(2))
        elif (m := _SYMPATH_RE.match(line)) and "symbol_path" not in facts:
            facts["symbol_path"] = m.group(1).strip()
        elif (m := _EXEPATH_RE.match(line)) and "executable_path" not in facts:
            facts["executable_path"] = m.group(1).strip()
        elif (m := _PROBABLY_RE.match(line)) and "probably_caused_by" not in facts:
            facts["probably_caused_by"] = ProbableCause(image=m.group(1), symbol=m.group(2) or None)
        elif (m := _FOLLOWUP_RE.match(line)) and "followup" not in facts:
            facts["followup"] = m.group(1)
        elif _TRUNCATED_RE.search(line):
            facts["truncated"] = True
    summary = parse_bugcheck_summary(text)
    if summary is not None:
        facts["bugcheck"] = summary
    os_info = facts.get("os")
    if isinstance(os_info, OsInfo) and not os_info.name_reliable:
        warnings.append(f"OS name {os_info.name!r} does not fit build {os_info.build}: debugger older than the OS")
    raw_time = facts.get("debug_session_time_raw")
    if isinstance(raw_time, str) and facts.get("debug_session_time") is None and parse_session_time_local(raw_time):
        pass  # no time zone printed (XP-era WinDbg): the local time is kept by the facts, not a UTC instant
    elif raw_time is not None and facts.get("debug_session_time") is None:
        warnings.append(f"debug session time not understood: {facts['debug_session_time_raw']!r}")
    return BannerInfo(**facts, warnings=tuple(warnings))  # type: ignore[arg-type]


def parse_vertarget(text: str) -> VertargetInfo:
    """``vertarget`` output (and the same lines from MEX ``!di``); other ``Name: value`` lines go to ``extra``."""
    lines = text.splitlines()
    facts = _system_facts(lines)
    extra: dict[str, str] = {}
    known = (_PRODUCT_RE, _BUILT_BY_RE, _EDITION_RE, _MACHINE_RE, _SESSION_RE, _UPTIME_RE)
    for line in lines:
        if parse_os_line(line) or _KBASE_RE.search(line) or any(r.match(line) for r in known):
            continue
        m = _EXTRA_RE.match(line)
        if m and m.group(1) not in extra:
            extra[m.group(1)] = m.group(2).strip()
    return VertargetInfo(**facts, extra=extra)  # type: ignore[arg-type]
