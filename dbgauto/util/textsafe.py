"""Make untrusted text harmless to show: control characters, bidi overrides and lone surrogates become escapes.

Names, comments and strings read from dumps, file names and debugger output are untrusted. Printed raw, an
ESC/CSI/OSC sequence rewrites the terminal (title, colours, cursor, hyperlinks), a NUL or C1 control corrupts it,
a CR overwrites the line already shown, a bidi override (U+202E) reverses what follows so ``exe.sys`` reads as
``sys.exe``, and a lone surrogate (invalid UTF-16 in a dump) cannot even be encoded. Each becomes a visible
``\\x1b`` / ``\\r`` / ``\\u202e`` escape instead, so the reader sees what was there.

* :func:`terminal` — one line or a block for a console: everything above escaped; tab and newline kept.
* :func:`visible` — text for a report (HTML/Markdown/text/CSV): the same set; HTML escaping is the renderer's job.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

__all__ = ["BIDI_CONTROLS", "os_reason", "terminal", "terminal_line", "visible"]

BIDI_CONTROLS: Final = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
"""Explicit direction marks, embeddings, overrides and isolates (Unicode TR 9, "explicit formatting")."""

_UNSAFE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff" + BIDI_CONTROLS + "]")
_UNSAFE_LINE: Final = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff" + BIDI_CONTROLS + "]")


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch == "\r":
        return "\\r"
    if ch == "\n":
        return "\\n"
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control character (except tab and newline), CR, bidi control and lone surrogate escaped."""
    return _UNSAFE.sub(_escape, text)


def terminal(text: str) -> str:
    """What may reach a console: as :func:`visible` (newlines kept, so a block stays a block)."""
    return _UNSAFE.sub(_escape, text)


def terminal_line(text: str) -> str:
    """One console line (a file name in a progress row, a log message): newlines escaped too."""
    return _UNSAFE_LINE.sub(_escape, text)


def os_reason(exc: OSError, path: object = None) -> str:
    """``path: reason`` for an OSError, naming the file it concerns (``exc.filename`` first, else ``path``).

    A ``*.partial`` temporary (atomic writes) is named by the output it stands for.
    """
    name = exc.filename if exc.filename is not None else path
    text = os.fspath(name) if isinstance(name, (str, os.PathLike)) else ("" if name is None else str(name))
    folder, _, base = text.replace("\\", "/").rpartition("/")
    if base.startswith(".") and base.endswith(".partial"):  # ".out.dmp.k2x9a1b3.partial" stands for "out.dmp"
        real = base[1 : -len(".partial")].rsplit(".", 1)[0]
        text = text[: len(text) - len(base)] + real if folder else real
    reason = exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, FileExistsError) and text and Path(text).is_file():  # mkdir over a file on the output path
        reason = "is a file, not a folder"
    return terminal_line(f"{text}: {reason}" if text else reason)
