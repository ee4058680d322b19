"""dbgauto's per-user cache folder, and private folders inside it for what must not be shared.

``%LOCALAPPDATA%\\dbgauto`` on Windows, ``$XDG_CACHE_HOME/dbgauto`` (default ``~/.cache/dbgauto``) elsewhere.
Symbols go under ``symbols/`` (``DBGAUTO_SYMBOL_CACHE`` overrides that one folder), compiled report templates
under ``templates/``. A folder whose content is executed when loaded (compiled templates are code) is only used
when no other user can write to it: :func:`private_dir`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from dbgauto.util.fs import others_can_write

__all__ = ["private_dir", "user_cache_root"]


def user_cache_root(env: Mapping[str, str] | None = None) -> Path:
    e = os.environ if env is None else env
    if sys.platform == "win32" and e.get("LOCALAPPDATA"):
        return Path(e["LOCALAPPDATA"]) / "dbgauto"
    base = e.get("XDG_CACHE_HOME") or str(Path(e.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "dbgauto"


def private_dir(path: Path) -> Path | None:
    """``path``, created (mode 0700) if missing, when only this user can write to it
    (:func:`dbgauto.util.fs.others_can_write`); None when it cannot be created or others can write to it."""
    with contextlib.suppress(OSError):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or others_can_write(st):
        return None
    return path
