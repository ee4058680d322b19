"""Make untrusted text visible and harmless to print: control characters and lone surrogates become escapes.

A NUL, an ANSI escape or a lone surrogate (from invalid UTF-16 in a dump) would corrupt a terminal, break
UTF-8 encoding or hide text in a page; ``\\x1b`` / ``\\udc80`` shows what was there instead.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["visible"]

_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control character (except tab and newlines) and lone surrogate escaped."""
    return _CONTROL.sub(_escape, text)
