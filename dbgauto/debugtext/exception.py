"""Exception records in user-mode (cdb) output: the event line and ``.exr``.

Shapes read (first found wins):

* the event line cdb prints when the target stops: ``(1a2c.1b3c): Access violation - code c0000005 (first chance)``;
* ``.exr -1`` / !analyze's EXCEPTION_RECORD: ``ExceptionAddress: 00007ff6`12341234 (MyApp!main+0x12)`` and
  ``ExceptionCode: c0000005 (Access violation)``.
"""

from __future__ import annotations

import re

from .model import ExceptionInfo, parse_hex

__all__ = ["parse_exception"]

_EVENT_RE = re.compile(
    r"^\([0-9a-fA-F]+\.[0-9a-fA-F]+\): (?P<desc>[^\n]{1,200}?) - code (?P<code>[0-9a-fA-F]{1,8})"
    r"(?: \((?P<chance>first|second|!!! second) chance\))?[ \t]*$",
    re.MULTILINE,
)
_EXR_ADDRESS_RE = re.compile(r"^[ \t]*ExceptionAddress: ([0-9a-fA-F`]+)", re.MULTILINE)
_EXR_CODE_RE = re.compile(r"^[ \t]*ExceptionCode: ([0-9a-fA-F]{1,8})(?: \(([^)\n]{1,200})\))?", re.MULTILINE)


def parse_exception(text: str) -> ExceptionInfo | None:
    """The exception the text reports, or None."""
    code_m = _EXR_CODE_RE.search(text)
    if code_m:
        addr_m = _EXR_ADDRESS_RE.search(text)
        return ExceptionInfo(
            code=int(code_m.group(1), 16),
            address=parse_hex(addr_m.group(1)) if addr_m else None,
            description=code_m.group(2),
        )
    m = _EVENT_RE.search(text)
    if m:
        chance = m.group("chance")
        return ExceptionInfo(
            code=int(m.group("code"), 16),
            description=m.group("desc").strip(),
            chance=None if chance is None else ("second" if "second" in chance else "first"),
        )
    return None
