"""The symbol-server client against a real http.server on 127.0.0.1 serving a symstore tree."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from dbgauto_testkit.cabwriter import build_cab
from symserver import ServedTree as _Tree

from dbgauto.errors import SymbolError
from dbgauto.symbols.server import SymbolFinder, SymbolServer
from dbgauto.symbols.store import LocalStore, image_key, pdb_key
from dbgauto.symbols.sympath import parse_symbol_path

GUID = "5278AFF8-6C34-1677-D7D7-835C85B7B844"
PDB = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0" + bytes(range(256)) * 40


def test_keys_are_symstore_paths() -> None:
    assert pdb_key("ntkrnlmp.pdb", GUID, 1).path == "ntkrnlmp.pdb/5278AFF86C341677D7D7835C85B7B8441/ntkrnlmp.pdb"
    assert pdb_key("x.pdb", "{" + GUID.lower() + "}", 0x1A).index.endswith("1A")
    k = image_key("ntoskrnl.exe", 0x5F9A3B4A, 0x9A5000)
    assert k.path == "ntoskrnl.exe/5F9A3B4A9a5000/ntoskrnl.exe"
    assert k.compressed_path == "ntoskrnl.exe/5F9A3B4A9a5000/ntoskrnl.ex_"
    # an RSDS record's full path names the file by its last component, as the debugger uses it
    assert pdb_key(r"C:\build\..\obj\drv.pdb", GUID, 1).name == "drv.pdb"
    for bad in ("..", "x\0.pdb", "x y.pdb\n", ""):
        with pytest.raises(SymbolError):
            pdb_key(bad, GUID, 1)


def test_plain_compressed_and_pointer_answers(served: tuple[str, _Tree], tmp_path: Path) -> None:
    url, tree = served
    k1, k2, k3 = pdb_key("a.pdb", GUID, 1), image_key("b.sys", 0x12345678, 0x7000), pdb_key("c.pdb", GUID, 2)
    tree.files[f"symbols/{k1.path}"] = PDB
    tree.files[f"symbols/{k2.compressed_path}"] = build_cab([("b.sys", b"MZ" + b"\0" * 5000)])
    tree.files[f"symbols/{k3.pointer_path}"] = f"PATH:{url}/elsewhere/c.pdb".encode()
    tree.files["symbols/elsewhere/c.pdb"] = b"redirected"
    finder = SymbolFinder(parse_symbol_path(f"srv*{tmp_path / 'down'}*{url}"), cache_dir=tmp_path / "cache")
    p1, p2, p3 = finder.find(k1), finder.find(k2), finder.find(k3)
    assert p1 == tmp_path / "down" / k1.path
    assert p1.read_bytes() == PDB
    assert p2.read_bytes() == b"MZ" + b"\0" * 5000
    assert p3.read_bytes() == b"redirected"
    assert finder.stats.downloads == 3
    # second time: from the downstream store, no request
    n = len(tree.log)
    assert finder.find(k1) == p1
    assert len(tree.log) == n
    assert not list((tmp_path / "down").rglob("*.partial"))


def test_missing_is_asked_once_per_run(served: tuple[str, _Tree], tmp_path: Path) -> None:
    url, tree = served
    finder = SymbolFinder(parse_symbol_path(f"srv*{tmp_path / 'd'}*{url}"), cache_dir=tmp_path / "c")
    k = pdb_key("missing.pdb", GUID, 1)
    assert finder.find(k) is None
    asked = list(tree.log)
    assert asked == [f"symbols/{p}" for p in (k.path, k.compressed_path, k.pointer_path)]
    for _ in range(5):
        assert finder.find(k) is None
    assert tree.log == asked
    assert finder.stats.misses == 6


def test_slow_server_times_out_within_bound(served: tuple[str, _Tree], tmp_path: Path) -> None:
    url, tree = served
    k = pdb_key("slow.pdb", GUID, 1)
    tree.files[f"symbols/{k.path}"] = "slow"
    server = SymbolServer(url, timeout=0.3, retries=1, backoff=0.01)
    t0 = time.monotonic()
    with pytest.raises(SymbolError, match=r"slow\.pdb.*(timed out|request failed)"):
        server.fetch(k)
    assert time.monotonic() - t0 < 1.4
    assert tree.log.count(f"symbols/{k.path}") == 2  # one try + one retry
    # through the finder the failure is recorded, not raised
    finder = SymbolFinder(parse_symbol_path(f"srv*{tmp_path}*{url}"), cache_dir=tmp_path,
                          server_factory=lambda u: SymbolServer(u, timeout=0.3, retries=0))
    assert finder.find(k) is None
    assert finder.stats.errors


def test_truncated_and_server_errors(served: tuple[str, _Tree], tmp_path: Path) -> None:
    url, tree = served
    kt, ke = pdb_key("t.pdb", GUID, 1), pdb_key("e.pdb", GUID, 1)
    tree.files[f"symbols/{kt.path}"] = "truncated"
    tree.files[f"symbols/{ke.path}"] = "error"
    server = SymbolServer(url, timeout=2, retries=2, backoff=0.01)
    with pytest.raises(SymbolError, match=r"truncated|request failed"):
        server.fetch(kt)
    with pytest.raises(SymbolError, match="HTTP 503"):
        server.fetch(ke)
    assert tree.log.count(f"symbols/{ke.path}") == 3
    assert not (tmp_path / "t.pdb").exists()


def test_no_network_when_not_allowed(served: tuple[str, _Tree], tmp_path: Path) -> None:
    url, tree = served
    k = pdb_key("a.pdb", GUID, 1)
    tree.files[f"symbols/{k.path}"] = PDB
    finder = SymbolFinder(parse_symbol_path(f"srv*{tmp_path}*{url}"), cache_dir=tmp_path, allow_network=False)
    assert finder.find(k) is None
    assert tree.log == []


def test_local_stores_compressed_flat_and_cache(tmp_path: Path) -> None:
    k = pdb_key("a.pdb", GUID, 1)
    up = tmp_path / "up"
    (up / k.compressed_path).parent.mkdir(parents=True)
    (up / k.compressed_path).write_bytes(build_cab([("a.pdb", PDB)]))
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "b.pdb").write_bytes(b"flat")
    sp = parse_symbol_path(f"cache*{tmp_path / 'cache'};srv*{up};{flat}")
    finder = SymbolFinder(sp, cache_dir=tmp_path / "default")
    got = finder.find(k)
    assert got == tmp_path / "cache" / k.path  # copied into the cache that applies to the element
    assert got.read_bytes() == PDB
    assert (up / k.path).read_bytes() == PDB  # the store's own copy was decompressed in place
    assert finder.find(pdb_key("b.pdb", GUID, 1)).read_bytes() == b"flat"
    bad = pdb_key("z.pdb", GUID, 1)
    (up / bad.compressed_path).parent.mkdir(parents=True)
    (up / bad.compressed_path).write_bytes(build_cab([("other.pdb", b"x")]))
    with pytest.raises(SymbolError, match=r"expected 'z\.pdb'"):
        LocalStore(up).get(bad)


def test_concurrent_workers_store_the_same_file(served: tuple[str, _Tree], tmp_path: Path) -> None:
    url, tree = served
    k = pdb_key("big.pdb", GUID, 1)
    body = bytes(range(256)) * 4000
    tree.files[f"symbols/{k.path}"] = body
    results: list[Path | None] = []

    def work() -> None:
        f = SymbolFinder(parse_symbol_path(f"srv*{tmp_path / 'shared'}*{url}"), cache_dir=tmp_path)
        results.append(f.find(k))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert all(r is not None and r.read_bytes() == body for r in results)
    assert not list((tmp_path / "shared").rglob("*.partial"))
