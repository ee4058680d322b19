"""Text from the outside world: decode debugger logs whatever wrote them, print without ever failing.

Why: WinDbg's ``.logopen /u`` writes UTF-16LE with a BOM, plain ``.logopen`` writes the ANSI code page, a
PowerShell ``>`` redirect (5.1) writes UTF-16LE too, and newer tools write UTF-8 with or without a BOM.
Reading all of them as UTF-8 turns a UTF-16 log into NUL-riddled noise that no parser matches.
And a console or redirected stream whose encoding cannot show a module name read from a dump must not
raise ``UnicodeEncodeError`` in the middle of a report: :func:`safe_streams` switches stdout/stderr to
``errors="replace"``.
"""

from __future__ import annotations

import codecs
import contextlib
import sys
from typing import Final, TextIO

__all__ = ["decode_log", "detect_encoding", "safe_streams"]

_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16LE: its BOM starts with the UTF-16LE one
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SNIFF: Final = 4096


def detect_encoding(data: bytes) -> tuple[str, int]:
    """(encoding, BOM length) of a log: by BOM, else UTF-16 by its NUL pattern, else UTF-8."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    head = data[:_SNIFF]
    if len(head) >= 4:
        even_nuls = head[0::2].count(0)
        odd_nuls = head[1::2].count(0)
        half = len(head) // 2
        if odd_nuls > 0.4 * half and even_nuls < 0.05 * half:
            return "utf-16-le", 0  # ASCII text in UTF-16LE: every second byte is 0
        if even_nuls > 0.4 * half and odd_nuls < 0.05 * half:
            return "utf-16-be", 0
    return "utf-8", 0


def decode_log(data: bytes) -> str:
    """A debugger log's text; undecodable bytes become U+FFFD (a damaged log still parses where it can)."""
    encoding, skip = detect_encoding(data)
    return data[skip:].decode(encoding, errors="replace")


def safe_streams(*streams: TextIO | None) -> None:
    """Make text streams replace what their encoding cannot show instead of raising (default: stdout, stderr)."""
    for stream in streams or (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError, AttributeError):
                reconfigure(errors="replace")
