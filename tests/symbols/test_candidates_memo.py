"""Candidate ISF tables are listed once per process (a batch worker sees many dumps) yet a table added to or
removed from the store is seen by the next dump; the cache's own converted tables are never candidates.

Real data: the small dump and the six ISF tables of ../shared (the README names the dump's kernel)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.open import read_parts
from dbgauto.symbols import context
from dbgauto.symbols.context import KernelInputs, SymbolContext
from dbgauto.symbols.sympath import resolve_symbol_path

SHARED = Path(os.environ.get("DBGAUTO_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
SYMBOLS = SHARED / "symbols" / "ntkrnlmp.pdb"
DUMP = SHARED / "dumps" / "triage_x64.dmp"
MATCH = "5278AFF86C341677D7D7835C85B7B844"  # ../shared/symbols/README.md: the kernel of triage_x64.dmp

pytestmark = pytest.mark.skipif(not SYMBOLS.is_dir() or not DUMP.is_file(), reason="../shared symbols/dump absent")


@pytest.fixture(scope="module")
def inputs() -> Any:
    with KernelDump.open(DUMP) as d:
        yield KernelInputs.from_parts(read_parts(d))


def _build(inputs: KernelInputs, path: Path) -> SymbolContext:
    return SymbolContext.build(inputs, resolve_symbol_path(str(path), {}))


def test_a_table_added_then_removed_is_seen_by_the_next_dump(
    inputs: KernelInputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stores' folders are walked again at most every STORE_RECHECK_SECONDS (a walk of a real symbol
    cache costs more than a dump's analysis): within that time the process's list stands, after it a table
    added or removed is seen."""
    store = tmp_path / "store" / "ntkrnlmp.pdb"
    store.mkdir(parents=True)
    for p in SYMBOLS.iterdir():
        if MATCH not in p.name:
            shutil.copy(p, store / p.name)
    monkeypatch.setattr(context, "STORE_RECHECK_SECONDS", 3600.0)
    assert _build(inputs, store.parent).table is None
    assert _build(inputs, store.parent).table is None  # the same answer from the process's list
    shutil.copy(SYMBOLS / f"{MATCH}-1.json.xz", store / f"{MATCH}-1.json.xz")
    assert _build(inputs, store.parent).table is None  # within the recheck interval: not walked again
    monkeypatch.setattr(context, "STORE_RECHECK_SECONDS", 0.0)
    found = _build(inputs, store.parent)
    assert found.method == "kdbg-match"
    assert found.table is not None
    assert found.table.guid == MATCH
    (store / f"{MATCH}-1.json.xz").unlink()
    assert _build(inputs, store.parent).table is None


def test_the_caches_converted_tables_are_not_candidates(inputs: KernelInputs, tmp_path: Path) -> None:
    """A path naming the cache folder itself (the default path does): its tables/ folder holds converted tables
    and KDBG fingerprints, never ISF sources; a stray JSON there is not read (no warning on every dump)."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    cache = resolve_symbol_path(None, env).cache_dir  # the default path: the cache folder itself
    (cache / "tables").mkdir(parents=True)
    (cache / "tables" / f"{MATCH}-1-0123456789abcdef0123.kdbg.json").write_text(json.dumps({"rvas": {}}))
    (cache / "isf" / "ntkrnlmp.pdb").mkdir(parents=True)
    shutil.copy(SYMBOLS / f"{MATCH}-1.json.xz", cache / "isf" / "ntkrnlmp.pdb" / f"{MATCH}-1.json.xz")
    ctx = SymbolContext.build(inputs, resolve_symbol_path(None, env))
    assert ctx.resolved.path.text == str(cache)
    assert ctx.table is not None
    assert ctx.table.guid == MATCH
    assert not [w for w in ctx.warnings if "kdbg.json" in w]
