"""Convert a symbol source (ISF, PDB) once; later loads read the compact table file (milliseconds).

The cache entry is keyed by the source's absolute path, size and modification time, so an edited or
replaced file is converted again; a damaged entry is rebuilt; a read-only cache still yields the table.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path

from dbgauto.errors import SymbolError
from dbgauto.symbols.table import SymbolTable

__all__ = ["cache_entry", "cached_convert"]


CONVERTED_DIR = "tables"  # under a cache dir: dbgauto's own converted tables and KDBG fingerprints, never a library


def cache_entry(source: Path, cache_dir: Path) -> Path:
    st = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]
    return cache_dir / CONVERTED_DIR / f"{source.name.split('.')[0]}-{key}.dbgsym"


def cached_convert(source: Path, cache_dir: Path | str | None, convert: Callable[[], SymbolTable]) -> SymbolTable:
    if cache_dir is None:
        return convert()
    try:
        entry = cache_entry(source, Path(cache_dir))
    except OSError as e:
        raise SymbolError(source, f"cannot read: {e.strerror or e}") from None
    if entry.is_file():
        with contextlib.suppress(SymbolError):
            return SymbolTable.load(entry)
    table = convert()
    with contextlib.suppress(OSError):
        table.save(entry)
    return table
