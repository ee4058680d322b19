"""Output file names built from dump content, made safe: they can never leave the output folder.

A dump's file name, a log's name or anything else read from the input may hold ``../``, separators of
either OS, control characters, lone surrogates or Windows reserved device names. :func:`safe_stem` keeps
only a conservative character set and :func:`inside` re-checks the final path against the folder.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Final

from dbgauto.analysis.facts import CrashFacts

__all__ = ["MAX_STEM", "inside", "report_stem", "safe_stem"]

MAX_STEM: Final = 80
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED: Final = frozenset(
    ["con", "prn", "aux", "nul", "conin$", "conout$"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)


def safe_stem(text: str, *, fallback: str = "dump") -> str:
    """A file-name stem from untrusted ``text``: last path component, ``[A-Za-z0-9._-]`` only, no leading dot."""
    last = re.split(r"[\\/]", text)[-1] if text else ""
    stem = _UNSAFE.sub("_", last).strip("._")[:MAX_STEM].strip("._")
    if not stem:
        return fallback
    if stem.split(".")[0].lower() in _RESERVED:
        stem = f"_{stem}"
    return stem


def report_stem(facts: CrashFacts) -> str:
    """The stem of a dump's report files: safe file name plus 8 hex digits of its identity.

    Many dumps share a name (every MEMORY.DMP), so the identity hash (or the path when there is none)
    keeps their reports apart; the same dump always gets the same name.
    """
    src = facts.source
    name = safe_stem(src.name if src else "crash")
    key = (src.sha256_first_mib_plus_size or src.path) if src else repr(facts.to_dict())
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{name}-{digest}"


def inside(folder: Path, name: str) -> Path:
    """``folder / name`` after checking that it stays directly inside ``folder``."""
    target = (folder / name).resolve()
    if target.parent != folder.resolve() or name in ("", ".", ".."):
        raise ValueError(f"output name {name!r} escapes {folder}")
    return target
