"""What ``dbgauto symbols fetch|manifest|import|status`` do, as functions over plain inputs.

The manifest is symchk's ``/om`` form, one file a line: ``name,index,1`` where index is ``<GUID><age>`` for
a PDB or ``<TIMESTAMP><SIZEOFIMAGE>`` for an image, so a connected machine can run ``symchk /im FILE`` and
carry the store back. (The third column is the value symchk writes for a plain file entry.)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbgauto.errors import SymbolError
from dbgauto.symbols.isf import ISF_SUFFIXES, find_isf_files, parse_isf
from dbgauto.symbols.server import SymbolFinder
from dbgauto.symbols.store import SymbolKey, image_key, make_key
from dbgauto.util import fs
from dbgauto.util.atomic import atomic_write_text

__all__ = [
    "FetchResult",
    "ImportResult",
    "fetch",
    "image_keys",
    "import_dir",
    "manifest_lines",
    "read_manifest",
    "status",
    "write_manifest",
]

_MAX_IMPORT_FILES = 1_000_000


@dataclass(frozen=True, slots=True)
class FetchResult:
    key: SymbolKey
    path: Path | None


def image_keys(drivers: Iterable[tuple[str, int, int]]) -> list[SymbolKey]:
    """Store keys for (name, TimeDateStamp, SizeOfImage) rows, e.g. a small dump's driver list; unusable
    rows (no name, zero size) are skipped; duplicates are dropped, order kept."""
    out: dict[SymbolKey, None] = {}
    for name, ts, size in drivers:
        try:
            out[image_key(name, ts, size)] = None
        except SymbolError:
            continue
    return list(out)


def fetch(
    keys: Iterable[SymbolKey],
    finder: SymbolFinder,
    progress: Callable[[int, int, SymbolKey, Path | None], None] | None = None,
) -> list[FetchResult]:
    """Find (and download where the path allows) every key; ``progress(done, total, key, path)`` after each."""
    todo = list(dict.fromkeys(keys))
    results = []
    for i, key in enumerate(todo, 1):
        path = finder.find(key)
        results.append(FetchResult(key, path))
        if progress is not None:
            progress(i, len(todo), key, path)
    return results


def manifest_lines(keys: Iterable[SymbolKey]) -> list[str]:
    return [f"{k.name},{k.index},1" for k in dict.fromkeys(keys)]


def write_manifest(keys: Iterable[SymbolKey], path: Path | str) -> Path:
    lines = manifest_lines(keys)
    return atomic_write_text(path, "".join(f"{line}\n" for line in lines))


def read_manifest(text: str, source: str = "<manifest>") -> list[SymbolKey]:
    keys = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise SymbolError(source, f"line {n}: expected name,index[,n], got {line[:80]!r}")
        try:
            keys.append(make_key(parts[0], parts[1]))
        except SymbolError as e:
            raise SymbolError(source, f"line {n}: {e.reason}") from None
    return keys


@dataclass
class ImportResult:
    store_files: int = 0
    isf_tables: int = 0
    skipped: list[str] = field(default_factory=list)


def import_dir(source: Path | str, cache_dir: Path | str) -> ImportResult:
    """Add a carried-in symbol store (``name/index/name`` layout, compressed twins included) and any ISF
    tables under ``source`` to the cache (ISF under ``isf/<pdb name>/<GUID>-<age>.json[.xz|.gz]``).
    Files already present are left alone; every copy is atomic (temporary file + rename)."""
    src, cache = Path(source), Path(cache_dir)
    result = ImportResult()
    isf = set(find_isf_files(src))
    for tbl in isf:
        try:
            pdb = parse_isf(tbl).get("metadata", {}).get("windows", {}).get("pdb", {})
            name, guid, age = pdb["database"], pdb["GUID"], int(pdb["age"])
        except (SymbolError, KeyError, TypeError, ValueError, AttributeError) as e:
            result.skipped.append(f"{tbl}: {e}")
            continue
        suffix = next(s for s in (".json.xz", ".json.gz", ".json") if tbl.name.lower().endswith(s))
        _copy(tbl, cache / "isf" / name / f"{guid}-{age}{suffix}")
        result.isf_tables += 1
    for n, (root, _dirs, files) in enumerate(os.walk(src)):
        if n > _MAX_IMPORT_FILES:
            break
        rel = Path(root).relative_to(src)
        if len(rel.parts) != 2:
            continue
        for f in files:
            p = Path(root) / f
            if p in isf or f.lower().endswith(ISF_SUFFIXES):
                continue
            top, index = rel.parts
            if f.lower() == "file.ptr" or f.lower() == top.lower() or f.lower() == top[:-1].lower() + "_":
                _copy(p, cache / top / index / f)
                result.store_files += 1
            else:
                result.skipped.append(f"{p}: not in symbol-store layout")
    return result


def _copy(src: Path, dst: Path) -> None:
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    shutil.copyfile(src, tmp)
    fs.replace(tmp, dst)  # retried while a scanner holds it (Windows)


def status(cache_dir: Path | str, finder: SymbolFinder | None = None) -> dict[str, Any]:
    """Cache size and contents, plus this run's hits, misses, downloads and errors when a finder is given."""
    cache = Path(cache_dir)
    files = size = tables = isf = 0
    if cache.is_dir():
        for n, p in enumerate(cache.rglob("*")):
            if n > _MAX_IMPORT_FILES:
                break
            if p.is_file() and not p.name.endswith(".partial"):
                files += 1
                size += p.stat().st_size
                tables += p.suffix == ".dbgsym"
                isf += p.name.lower().endswith(ISF_SUFFIXES)
    out: dict[str, Any] = {"cache_dir": str(cache), "files": files, "bytes": size, "tables": tables, "isf": isf}
    if finder is not None:
        s = finder.stats
        out |= {"hits": s.hits, "misses": s.misses, "downloads": s.downloads, "errors": list(s.errors)}
    return out
