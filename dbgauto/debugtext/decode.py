"""Read a saved debugger log (decoded by :func:`dbgauto.util.text.decode_log`: UTF-8, UTF-16 from ``.logopen /u``).

Also says whether a text is debugger output at all, so ``report --from-log notes.txt`` can refuse a file that is
not a log instead of reporting nothing.
"""

from __future__ import annotations

import os
import re
from typing import Final

from dbgauto.errors import DbgautoError
from dbgauto.util.text import decode_log  # the one decoder of logs (BOMs, UTF-16 by its NUL pattern)

__all__ = ["MAX_LOG_BYTES", "decode_log", "looks_like_debugger_log", "read_log"]

MAX_LOG_BYTES: Final = 256 << 20
"""A larger file is refused: no console log of one session comes near it, and it would be read whole."""

_MARKERS: Final = re.compile(
    r"Microsoft \(R\) Windows Debugger|Loading Dump File|Kernel Version \d|Bugcheck Analysis|Exception Analysis"
    r"|^\s*BugCheck [0-9a-fA-F]+, \{|^\s*Bugcheck code [0-9a-fA-F]|^[0-9]*: ?kd> |^kd> |^[0-9]+:[0-9]+(?::\w+)?> "
    r"|^[0-9a-fA-F`]{8,17} [0-9a-fA-F`]{8,17} +\S+ +\(|FAILURE_BUCKET_ID:|BUGCHECK_CODE:|Probably caused by\s*:"
    r"|Child-SP +RetAddr|ChildEBP +RetAddr|^start +end +module name|Debug session time:",
    re.MULTILINE,
)


def read_log(path: os.PathLike[str] | str) -> str:
    """Read and decode one log file (OSError as raised; a file beyond :data:`MAX_LOG_BYTES` is refused)."""
    with open(path, "rb") as fh:
        data = fh.read(MAX_LOG_BYTES + 1)
    if len(data) > MAX_LOG_BYTES:
        raise DbgautoError(f"{os.fspath(path)}: larger than {MAX_LOG_BYTES >> 20} MiB; not a debugger log")
    return decode_log(data)


def looks_like_debugger_log(text: str) -> bool:
    """True when the text holds something only cdb/kd/WinDbg print (banner, prompt, !analyze, k, lm)."""
    return _MARKERS.search(text) is not None
