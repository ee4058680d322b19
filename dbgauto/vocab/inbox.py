"""Is a kernel module one that ships with Windows ("inbox")? A packaged name list plus a few naming rules.

``is_inbox`` accepts what dumps and debuggers show: a full NT path (``\\SystemRoot\\System32\\drivers\\x.sys``,
``\\??\\C:\\Windows\\...``), a file name (``x.sys``) or a debugger module name (``nt``, ``CLFS``,
``mcupdate_GenuineIntel``). A path outside the Windows directory is never inbox, whatever its file name (a
vendor's driver reusing an inbox name). Crash-dump filter copies (``dump_stornvme.sys``) are judged by the
name after ``dump_``. The list is ``inbox_modules.txt`` beside this module; a name missing from it is
reported third-party, so the list errs on the side of completeness for Windows 10/11 x64 and ARM64.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Final

from dbgauto.vocab.modules import module_file_name

__all__ = ["inbox_names", "is_inbox", "module_file_name"]

_WINDOWS_DIR: Final = re.compile(r"^(\\systemroot\\|\\\?\?\\[a-z]:\\windows\\|[a-z]:\\windows\\|\\windows\\)", re.I)
_PATTERNS: Final = (
    re.compile(r"^kd_[0-9a-f]{2}_[0-9a-f]{4}\.dll$"),  # kdnet NIC extensibility modules
    re.compile(r"^mcupdate_\w+\.dll$"),  # microcode update modules, one per CPU vendor
    re.compile(r"^hal\w*\.dll$"),  # HAL variants and HAL extensions
)
# debugger module names that are not the file's stem
_ALIASES: Final = {"nt": "ntoskrnl.exe", "hal": "hal.dll", "win32k": "win32k.sys"}


@cache
def inbox_names() -> frozenset[str]:
    """The packaged list (lower-case file names)."""
    text = resources.files("dbgauto.vocab").joinpath("inbox_modules.txt").read_text(encoding="utf-8")
    return frozenset(
        line.split("#", 1)[0].strip().lower() for line in text.splitlines() if line.split("#", 1)[0].strip()
    )


@cache
def _stems() -> frozenset[str]:
    return frozenset(n.rsplit(".", 1)[0] for n in inbox_names())


def is_inbox(name_or_path: str) -> bool:
    """True when the module ships with Windows (see the module docstring for the rules)."""
    if not name_or_path or not name_or_path.strip():
        return False
    text = name_or_path.strip()
    if ("\\" in text or "/" in text) and not _WINDOWS_DIR.match(text):
        return False
    base = module_file_name(text).lower()
    if base.startswith("dump_"):
        base = base[5:]
    if base in _ALIASES:
        return True
    if "." in base:
        return base in inbox_names() or any(p.match(base) for p in _PATTERNS)
    # a debugger module name: no extension
    return base in _stems() or any(p.match(base + ".dll") for p in _PATTERNS)
