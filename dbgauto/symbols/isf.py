"""volatility3 ISF tables (``.json``, ``.json.gz``, ``.json.xz``) → :class:`SymbolTable`, cached.

Many responders keep libraries of ISF tables (``<pdbname>/<GUID>-<age>.json.xz`` as volatility3 lays them
out, or flat). Parsing one costs a few hundred milliseconds (xz + a 10 MB JSON), so :func:`load_isf` converts it once
into the compact table file under ``cache_dir`` (:mod:`dbgauto.symbols.cache`).

ISF symbols carry an RVA only (publics, functions and data alike, no sizes or kinds): rows get
``KIND_UNKNOWN`` and the naming rule in :mod:`dbgauto.symbols.table` applies.
"""

from __future__ import annotations

import gzip
import json
import lzma
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dbgauto.errors import SymbolError
from dbgauto.symbols.cache import cached_convert
from dbgauto.symbols.table import KIND_UNKNOWN, SymbolTable

__all__ = ["ISF_SUFFIXES", "find_isf_files", "isf_to_table", "load_isf", "parse_isf"]

ISF_SUFFIXES = (".json", ".json.gz", ".json.xz")
MAX_ISF_BYTES = 512 << 20  # a decompressed kernel table is ~10 MB; refuse decompression bombs
_MAX_TYPE_DEPTH = 16
_MAX_WALK_FILES = 100_000


def _read_text(path: Path) -> bytes:
    name = path.name.lower()
    try:
        if name.endswith(".xz"):
            with lzma.open(path) as fh:
                data = fh.read(MAX_ISF_BYTES + 1)
        elif name.endswith(".gz"):
            with gzip.open(path) as fh:
                data = fh.read(MAX_ISF_BYTES + 1)
        else:
            with open(path, "rb") as fh:
                data = fh.read(MAX_ISF_BYTES + 1)
    except (OSError, lzma.LZMAError, EOFError) as e:
        raise SymbolError(path, f"cannot read ISF table: {e}") from None
    if len(data) > MAX_ISF_BYTES:
        raise SymbolError(path, f"ISF table larger than {MAX_ISF_BYTES} bytes once decompressed")
    return data


def parse_isf(path: Path) -> dict[str, Any]:
    """The ISF document, checked for the parts we use."""
    try:
        doc = json.loads(_read_text(path))
    except ValueError as e:
        raise SymbolError(path, f"ISF table is not JSON: {e}") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("symbols"), dict)
        or not isinstance(doc.get("user_types", {}), dict)
    ):
        raise SymbolError(path, "not an ISF table (no 'symbols' mapping)")
    return doc


def _type_text(t: Any, depth: int = 0) -> str:
    if not isinstance(t, dict) or depth > _MAX_TYPE_DEPTH:
        return "?"
    kind = t.get("kind")
    if kind in ("struct", "union", "enum", "base", "class"):
        return str(t.get("name", "?"))
    if kind == "pointer":
        return _type_text(t.get("subtype"), depth + 1) + "*"
    if kind == "array":
        return f"{_type_text(t.get('subtype'), depth + 1)}[{t.get('count', 0)}]"
    if kind == "bitfield":
        return f"{_type_text(t.get('type'), depth + 1)}:{t.get('bit_length', 0)}@{t.get('bit_position', 0)}"
    if kind == "function":
        return "function"
    return str(kind)


def isf_to_table(doc: dict[str, Any], source: str = "") -> SymbolTable:
    """Convert a parsed ISF document; malformed entries raise :class:`SymbolError` naming ``source``."""
    try:
        return _convert(doc, source)
    except (TypeError, ValueError, AttributeError, KeyError) as e:  # KeyError: no "symbols" (fuzz finding)
        raise SymbolError(source, f"ISF table malformed: {e!s}") from None


def _convert(doc: dict[str, Any], source: str) -> SymbolTable:
    pdb = (doc.get("metadata") or {}).get("windows", {}).get("pdb", {}) if isinstance(doc.get("metadata"), dict) else {}
    rows: list[tuple[str, int, int, int]] = []
    for name, entry in doc["symbols"].items():
        addr = entry.get("address") if isinstance(entry, dict) else None
        if not isinstance(addr, int) or not 0 <= addr < 1 << 32:
            raise SymbolError(source, f"symbol {name!r}: address {addr!r} is not a 32-bit RVA")
        rows.append((name, addr, 0, KIND_UNKNOWN))
    types: dict[str, Any] = {}
    for name, t in doc.get("user_types", {}).items():
        if not isinstance(t, dict) or not isinstance(t.get("fields", {}), dict):
            raise SymbolError(source, f"type {name!r} is malformed")
        fields = {}
        for fname, f in t.get("fields", {}).items():
            if not isinstance(f, dict) or not isinstance(f.get("offset"), int):
                raise SymbolError(source, f"type {name!r} field {fname!r} has no offset")
            fields[fname] = [f["offset"], _type_text(f.get("type"))]
        types[name] = [int(t.get("size", 0)), str(t.get("kind", "struct")), fields]
    module = str(pdb.get("database") or Path(source).parent.name or "unknown")
    age = pdb.get("age")
    return SymbolTable(
        module=module,
        guid=pdb.get("GUID"),
        age=age if isinstance(age, int) else None,
        machine=pdb.get("machine_type"),
        symbols=rows,
        types=types,
        source=source,
    )


def load_isf(path: Path | str, cache_dir: Path | str | None = None) -> SymbolTable:
    """Load an ISF table; with ``cache_dir`` the converted form is read if present, else written (atomically)."""
    path = Path(path)
    return cached_convert(path, cache_dir, lambda: isf_to_table(parse_isf(path), str(path)))


def find_isf_files(root: Path | str, *, skip: Path | None = None) -> Iterator[Path]:
    """ISF files under ``root`` (either layout), in a stable order; bounded walk. Nothing under ``skip`` (dbgauto's
    converted-table folder inside a cache: its files are ours, and older versions named some ``*.json``)."""
    root = Path(root)
    if root.is_file():
        yield root
        return
    found = (p for p in root.rglob("*.json*") if skip is None or not p.is_relative_to(skip))
    for seen, p in enumerate(sorted(found)):
        if seen >= _MAX_WALK_FILES:
            return
        if p.is_file() and p.name.lower().endswith(ISF_SUFFIXES):
            yield p
