"""ISF tables of six real kernels (../shared/symbols) and the real small dump of one of them.

Expectations come from the tables' own JSON (read here with json+lzma), the README of the data (which KDBG
addresses belong to which build), the issue's WinDbg frames, and the triage reader's identity for that dump.
"""

from __future__ import annotations

import json
import lzma
import os
import time
from pathlib import Path

import pytest

from dbgauto.errors import SymbolError
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.smalldump import kernel_view, parts_from_triage
from dbgauto.symbols.identify import by_kdbg, by_rsds, kdbg_addresses
from dbgauto.symbols.isf import find_isf_files, load_isf
from dbgauto.symbols.naming import code_name
from dbgauto.symbols.objects import process_identity
from dbgauto.symbols.table import SymbolTable

SHARED = Path(os.environ.get("DBGAUTO_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
ISF_DIR = SHARED / "symbols" / "ntkrnlmp.pdb"
DUMP = SHARED / "dumps" / "triage_x64.dmp"
MATCH = "5278AFF86C341677D7D7835C85B7B844"

pytestmark = pytest.mark.skipif(not ISF_DIR.is_dir() or not DUMP.is_file(), reason="../shared symbols/dump absent")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("symcache")


@pytest.fixture(scope="module")
def tables(cache: Path) -> list[SymbolTable]:
    return [load_isf(p, cache) for p in find_isf_files(ISF_DIR.parent)]


def test_isf_table_agrees_with_its_json(tables: list[SymbolTable]) -> None:
    path = ISF_DIR / f"{MATCH}-1.json.xz"
    with lzma.open(path) as fh:
        doc = json.loads(fh.read())
    t = next(t for t in tables if t.guid == MATCH)
    assert (t.module, t.age, t.machine) == ("ntkrnlmp.pdb", 1, 0x8664)
    assert len(t) == len(doc["symbols"])
    for name in ("PsLoadedModuleList", "RtlDispatchException", "KiSystemCall64", "KdDebuggerDataBlock"):
        assert t.rva(name) == doc["symbols"][name]["address"]
    ep = t.type("_EPROCESS")
    assert ep is not None
    assert ep.size == doc["user_types"]["_EPROCESS"]["size"]
    assert set(ep.fields) == set(doc["user_types"]["_EPROCESS"]["fields"])
    assert ep.fields["ImageFileName"].offset == doc["user_types"]["_EPROCESS"]["fields"]["ImageFileName"]["offset"]
    assert ep.fields["ImageFileName"].type == "unsigned char[15]"
    kt = doc["user_types"]["_KTHREAD"]["fields"]
    assert t.field_offset("_ETHREAD", "Tcb.InitialStack") == kt["InitialStack"]["offset"]


def test_second_load_comes_from_the_cache_and_is_equal(cache: Path, tables: list[SymbolTable]) -> None:
    path = ISF_DIR / f"{MATCH}-1.json.xz"
    files = list((cache / "tables").iterdir())
    assert len(files) == 6
    t0 = time.perf_counter()
    again = load_isf(path, cache)
    elapsed = time.perf_counter() - t0
    first = next(t for t in tables if t.guid == MATCH)
    assert again.to_bytes() == first.to_bytes()
    assert elapsed < 1.0  # generous: the benchmark measures; this only proves the JSON was not parsed again
    assert len(list((cache / "tables").iterdir())) == 6


def test_kdbg_match_names_exactly_the_dumps_build(tables: list[SymbolTable]) -> None:
    tri = KernelDump.open(DUMP).triage
    k = tri.kdbg
    assert k is not None
    addrs = kdbg_addresses(k.fields, k.address)
    assert len(addrs) == 8
    ident, rejected = by_kdbg(k.kern_base, addrs, tables)
    assert ident is not None
    assert ident.method == "kdbg-match"
    assert ident.table.guid == MATCH
    assert len(rejected) == 5
    # the README's figures: these RVAs, this KernBase
    assert k.kern_base == 0xFFFFF8047BA00000
    assert ident.table.rva("PsActiveProcessHead") == 0xC1E200
    # the others are rejected on their own, too
    others = [t for t in tables if t.guid != MATCH]
    assert by_kdbg(k.kern_base, addrs, others)[0] is None
    # too little evidence is not an identification
    few = dict(list(addrs.items())[:3])
    assert by_kdbg(k.kern_base, few, tables)[0] is None


def test_rsds_identification(tables: list[SymbolTable]) -> None:
    guid = "5278aff8-6c34-1677-d7d7-835c85b7b844"
    ident = by_rsds(guid, 1, tables)
    assert ident is not None
    assert (ident.method, ident.table.guid) == ("rsds", MATCH)
    assert by_rsds(guid, 2, tables) is None
    via = by_rsds(guid, 1, tables, via_image=True)
    assert via is not None
    assert via.method == "image-by-timestamp"


def test_stack_values_get_windbg_names(tables: list[SymbolTable]) -> None:
    tri = KernelDump.open(DUMP).triage
    t = next(t for t in tables if t.guid == MATCH)
    kb = tri.kdbg.kern_base
    hits = kernel_view(parts_from_triage(tri))["stack_scan"]
    names = {code_name(h.value, kb, t, "nt") for h in hits if h.module == "ntoskrnl.exe"}
    assert "nt!RtlDispatchException+0x297" in names  # as WinDbg names the frames (issue 11)
    assert "nt!_C_specific_handler+0xa2" in names
    # with the image's code ranges known, an address in data is never named after a symbol; no table → nt+off
    s = t.rva("PsLoadedModuleList")
    assert code_name(kb + s + 8, kb, t, "nt", code_ranges=[(0x1000, s)]) == f"nt+{s + 8:#x}"
    # string literals (??_C@) are data by name and never name code
    lit, rva = next((n, r) for n, r in t.names("??_C@*"))
    hit = t.function_at(rva + 1)
    assert hit is None or hit.name != lit
    assert code_name(kb + 0x32BD00 + 0x297, kb, None, "nt") == "nt+0x32bf97"


def test_identity_from_table_offsets_equals_the_readers(tables: list[SymbolTable]) -> None:
    tri = KernelDump.open(DUMP).triage
    t = next(t for t in tables if t.guid == MATCH)
    ident = process_identity(t, tri.process, tri.thread, tri.pointer_size)
    assert tuple(ident) == ("System", 4, 264)
    assert tuple(ident) == tuple(map(kernel_view(parts_from_triage(tri)).get, ("process_name", "pid", "tid")))
    # a wrong build's offsets do not produce a confident wrong answer
    win7 = next(t for t in tables if t.guid == "339E74133576439CBCDF7E0229DA3773")
    assert process_identity(win7, tri.process, tri.thread, 8) == (None, None, None)


def test_bad_isf_and_bad_cache_entries(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(SymbolError, match=r"x\.json.*not JSON"):
        load_isf(bad)
    bad.write_text(json.dumps({"symbols": {"a": {"address": -1}}}))
    with pytest.raises(SymbolError, match="32-bit RVA"):
        load_isf(bad)
    xz = tmp_path / "t.json.xz"
    xz.write_bytes(lzma.compress(b'{"symbols": {}}')[:20])
    with pytest.raises(SymbolError, match="cannot read ISF"):
        load_isf(xz)
    with pytest.raises(SymbolError, match="not a dbgauto symbol table"):
        SymbolTable.from_bytes(b"DBGSYMT1\xff\xff\xff\x7f", "c.dbgsym")
    good = tmp_path / "g.json"
    good.write_text(json.dumps({"symbols": {"f": {"address": 16}}, "user_types": {}}))
    t = load_isf(good, tmp_path / "c")
    (entry,) = (tmp_path / "c" / "tables").iterdir()
    entry.write_bytes(entry.read_bytes()[:-3])  # damaged cache entry: rebuilt, not trusted
    assert load_isf(good, tmp_path / "c").rva("f") == t.rva("f") == 16
