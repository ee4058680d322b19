"""Debugger console text (cdb / kd / WinDbg) → typed facts.

Tolerant by design: unknown fields are kept, missing ones are None, and ``parse_log`` turns a parse problem into a
warning string instead of raising.
"""

from __future__ import annotations

from .analyze import parse_analyze
from .banner import (
    parse_banner,
    parse_os_line,
    parse_session_time,
    parse_session_time_local,
    parse_uptime,
    parse_vertarget,
)
from .bugcheck import parse_bugcheck, parse_bugcheck_summary
from .decode import decode_log, looks_like_debugger_log, read_log
from .exception import parse_exception
from .lm import parse_lm
from .model import (
    AnalyzeArgument,
    AnalyzeInfo,
    BannerInfo,
    BugcheckInfo,
    CommandBlock,
    ExceptionInfo,
    ModuleEntry,
    OsInfo,
    ParsedLog,
    ProbableCause,
    StackFrame,
    SystemLines,
    VertargetInfo,
    parse_hex,
)
from .session import parse_blocks, parse_log, split_command_line, split_commands
from .stack import parse_stack, split_call_site

__all__ = [
    "AnalyzeArgument",
    "AnalyzeInfo",
    "BannerInfo",
    "BugcheckInfo",
    "CommandBlock",
    "ExceptionInfo",
    "ModuleEntry",
    "OsInfo",
    "ParsedLog",
    "ProbableCause",
    "StackFrame",
    "SystemLines",
    "VertargetInfo",
    "decode_log",
    "looks_like_debugger_log",
    "parse_analyze",
    "parse_banner",
    "parse_blocks",
    "parse_bugcheck",
    "parse_bugcheck_summary",
    "parse_exception",
    "parse_hex",
    "parse_lm",
    "parse_log",
    "parse_os_line",
    "parse_session_time",
    "parse_session_time_local",
    "parse_stack",
    "parse_uptime",
    "parse_vertarget",
    "read_log",
    "split_call_site",
    "split_command_line",
    "split_commands",
]
