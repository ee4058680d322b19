"""fetch / manifest / import / status over real files, the loopback server and the real ISF tables."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from dbgauto_testkit.cabwriter import build_cab
from symserver import ServedTree

from dbgauto.errors import SymbolError
from dbgauto.kdump.reader import KernelDump
from dbgauto.symbols.commands import fetch, image_keys, import_dir, read_manifest, status, write_manifest
from dbgauto.symbols.isf import find_isf_files, load_isf
from dbgauto.symbols.server import SymbolFinder
from dbgauto.symbols.store import pdb_key
from dbgauto.symbols.sympath import parse_symbol_path

SHARED = Path(os.environ.get("DBGAUTO_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
DUMP = SHARED / "dumps" / "triage_x64.dmp"
GUID = "5278AFF86C341677D7D7835C85B7B844"


@pytest.mark.skipif(not DUMP.is_file(), reason="../shared dump absent")
def test_manifest_from_a_real_dumps_driver_list(tmp_path: Path) -> None:
    tri = KernelDump.open(DUMP).triage
    rows = [(d.base_name, d.timestamp, d.size) for d in tri.drivers]
    keys = image_keys(rows)
    assert keys
    nt = next(k for k in keys if k.name.lower() == "ntoskrnl.exe")
    drv = next(d for d in tri.drivers if d.base_name.lower() == "ntoskrnl.exe")
    assert nt.index == f"{drv.timestamp:08X}{drv.size:x}"
    out = write_manifest([*keys, pdb_key("ntkrnlmp.pdb", GUID, 1)], tmp_path / "m.txt")
    text = out.read_text()
    assert f"ntkrnlmp.pdb,{GUID}1,1\n" in text
    assert read_manifest(text) == [*keys, pdb_key("ntkrnlmp.pdb", GUID, 1)]
    with pytest.raises(SymbolError, match="line 2"):
        read_manifest("a.pdb,ABC,1\n../x.pdb,ABC,1\n", "m.txt")


def test_fetch_with_progress_and_status(served: tuple[str, ServedTree], tmp_path: Path) -> None:
    url, tree = served
    keys = [pdb_key(f"m{i}.pdb", GUID, 1) for i in range(3)]
    tree.files[f"symbols/{keys[0].path}"] = b"zero"
    tree.files[f"symbols/{keys[1].compressed_path}"] = build_cab([("m1.pdb", b"one")])
    finder = SymbolFinder(parse_symbol_path(f"srv*{tmp_path / 'store'}*{url}"), cache_dir=tmp_path / "store")
    seen: list[tuple[int, int]] = []
    res = fetch([*keys, keys[0]], finder, lambda i, n, k, p: seen.append((i, n)))
    assert [r.path is not None for r in res] == [True, True, False]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    st = status(tmp_path / "store", finder)
    assert (st["files"], st["bytes"], st["hits"], st["misses"], st["downloads"]) == (2, 7, 2, 1, 2)


@pytest.mark.skipif(not (SHARED / "symbols").is_dir(), reason="../shared symbols absent")
def test_import_store_and_isf_folder(tmp_path: Path) -> None:
    carried = tmp_path / "carried"
    shutil.copytree(SHARED / "symbols" / "ntkrnlmp.pdb", carried / "isf-flat")  # ISF, any layout
    k = pdb_key("drv.pdb", GUID, 2)
    (carried / k.name / k.index).mkdir(parents=True)
    (carried / k.compressed_path).write_bytes(build_cab([("drv.pdb", b"pdb!")]))
    (carried / "junk" / "x").mkdir(parents=True)
    (carried / "junk" / "x" / "other.txt").write_text("?")
    cache = tmp_path / "cache"
    r = import_dir(carried, cache)
    assert (r.isf_tables, r.store_files) == (6, 1)
    assert len(r.skipped) == 1
    assert (cache / "isf" / "ntkrnlmp.pdb" / f"{GUID}-1.json.xz").is_file()
    again = import_dir(carried, cache)  # idempotent
    assert (again.isf_tables, again.store_files) == (6, 1)
    finder = SymbolFinder(parse_symbol_path(str(cache)), cache_dir=cache, allow_network=False)
    # a plain directory element also reads the store layout, compressed twin included
    got = finder.find(k)
    assert got is not None
    assert got.read_bytes() == b"pdb!"
    tables = [load_isf(p, cache) for p in find_isf_files(cache / "isf")]
    assert sorted(t.guid for t in tables)[0] == "11BC9A513F1140CA359ECDF50F0122C1"
    assert status(cache)["tables"] == 6
