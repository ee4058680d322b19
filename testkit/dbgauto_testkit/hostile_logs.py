"""Adversarial debugger-log texts (about 1 MB each) that make a non-linear parser blow up: unclosed braces and
parentheses, runs of blank lines after a field, repeated prompts, ... Used by the linear-time test and its
benchmark (benchmarks/bench_hostile_logs.py); never imports dbgauto.
"""

from __future__ import annotations

__all__ = ["MB", "NAMES", "UNITS", "hostile_text"]

MB = 1 << 20


def _fill(unit: str, size: int = MB) -> str:
    return unit * (size // len(unit))


UNITS = {
    "unclosed summary braces": "BugCheck 3B, {c0000005, \n",
    "unclosed mex parens": "Bugcheck: 19 (22, \n",
    "unclosed braces no newline": "BugCheck 3B, {c0000005, ",
    "one-line fields and blanks": "A_FIELD: v\n\n\n\n",
    "spaces one line": " ",
    "spaces then bracket": " " * 200 + "[x @ \n",
    "prompts": "0: kd> k\n",
    "stack rows": "ffff8a0c`e1d8f108 fffff803`7b2ab669 : 00000000`0000000a ffffb688`d27f3010 : nt!Ke+0x0\n",
    "backticks": "`",
    "Arguments lines": "Arguments:\nArg1: ffffffff, \n",
    "analyze headers": "BAD_POOL_HEADER (19)\n",
    "name-only headers": "BAD_POOL_HEADER\n\n",
    "product lines": "Product: WinNt, suite: " + "x " * 50 + "\n",
    "lm rows": "fffff800`00000000 fffff800`00001000   nt   (" + "(" * 40 + "\n",
    "key value": "    Key  : \n",
    "debug session time": "Debug session time: " + "Mon " * 30 + "\n",
}


def hostile_text(name: str, size: int = MB) -> str:
    """The text called ``name`` (one of :data:`NAMES`), ``size`` characters long."""
    if name == "field then blank lines":
        return "Debugging Details:\nFOO: one\n" + "\n" * (size - 30) + "x"
    return _fill(UNITS[name], size)


NAMES = sorted([*UNITS, "field then blank lines"])
