"""Bug check code and parameters from ``.bugcheck``, MEX ``!crash``/``!di`` and the banner's short summary.

Shapes read (first found wins, in this order):

* ``.bugcheck`` (also inside MEX ``!crash``): ``Bugcheck code 00000139`` + ``Arguments 00000000`0000001d ...``;
* MEX ``!di``: ``Bugcheck: 19 (22, FFFFBD06D46E0000, 1, 0)``;
* the banner summary: ``BugCheck 3B, {c0000005, fffff8066f2a6034, ffffa005550bd940, 0}``.
"""

from __future__ import annotations

import re

from .model import BugcheckInfo, parse_hex

_CODE_RE = re.compile(r"^[ \t]*Bugcheck code ([0-9a-fA-F`]+)[ \t]*$", re.MULTILINE)
_ARGS_RE = re.compile(r"^[ \t]*Arguments((?:[ \t]+[0-9a-fA-F`]+)+)[ \t]*$", re.MULTILINE)
_MEX_RE = re.compile(r"^[ \t]*Bugcheck: ([0-9a-fA-F]+) \(([^)\n]*)\)[ \t]*$", re.MULTILINE)
_SUMMARY_RE = re.compile(r"^[ \t]*BugCheck ([0-9a-fA-F]+), \{([^}\n]*)\}[ \t]*$", re.MULTILINE)
# Both stay within one line ([^)\n], [^}\n]): a class that crosses newlines makes every unclosed "{" scan to the
# end of the text, so thousands of "BugCheck 3B, {c0000005, " lines took quadratic time.


def _params(text: str, sep: str | None) -> tuple[int, ...] | None:
    values = [parse_hex(p) for p in (text.split(sep) if sep else text.split())]
    if any(v is None for v in values):
        return None
    return tuple(v for v in values if v is not None)


def parse_bugcheck_summary(text: str) -> BugcheckInfo | None:
    """The banner's ``BugCheck 3B, {c0000005, ...}`` line, or None."""
    m = _SUMMARY_RE.search(text)
    if not m:
        return None
    params = _params(m.group(2), ",")
    return BugcheckInfo(code=int(m.group(1), 16), parameters=params or (), source="summary")


def parse_bugcheck(text: str) -> BugcheckInfo | None:
    """Bug check code and parameters, or None when the text holds none of the known shapes."""
    m = _CODE_RE.search(text)
    if m:
        code = parse_hex(m.group(1))
        args = _ARGS_RE.search(text, m.end())
        params = _params(args.group(1), None) if args else None
        return BugcheckInfo(code=code, parameters=params or (), source="bugcheck")
    m = _MEX_RE.search(text)
    if m:
        params = _params(m.group(2), ",")
        return BugcheckInfo(code=int(m.group(1), 16), parameters=params or (), source="mex")
    return parse_bugcheck_summary(text)
