"""``--keep-days N``: delete generated files older than N days; never a source, never the catalog.

Only files under the output folder's generated sub-folders (``small/``, ``reports/``) are candidates, and
any file that is a source the catalog knows is kept whatever its age. Catalog rows are kept: the index still
lists the dump (its report link goes stale, and a ``--force`` run writes it again).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["prune_outputs"]

log = logging.getLogger("dbgauto.batch")


def prune_outputs(
    out: Path, folders: Iterable[str], keep_days: float, *, sources: set[str], now: float | None = None
) -> list[Path]:
    """Delete regular files under ``out/<folder>`` not modified for ``keep_days`` days; returns them."""
    cutoff = (time.time() if now is None else now) - keep_days * 86400
    removed: list[Path] = []
    for name in folders:
        root = out / name
        if not root.is_dir() or root.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = [d for d in dirnames if not Path(dirpath, d).is_symlink()]
            for fn in filenames:
                p = Path(dirpath, fn)
                try:
                    st = p.lstat()
                except OSError:
                    continue
                if p.is_symlink() or str(p) in sources or str(p.resolve()) in sources:
                    continue
                if st.st_mtime < cutoff:
                    try:
                        p.unlink()
                    except OSError as exc:
                        log.warning("could not remove old output %s: %s", p, exc)
                        continue
                    removed.append(p)
    if removed:
        log.info("removed %d generated file(s) older than %g day(s)", len(removed), keep_days)
    return removed
