"""PDB reading on real PDBs that clang + lld-link build here, checked against llvm-pdbutil / llvm-readobj."""

from __future__ import annotations

import contextlib
import re
import shutil
import struct
import subprocess
import uuid
from pathlib import Path

import pytest
from dbgauto_testkit.cabwriter import build_cab
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from symserver import ServedTree

from dbgauto.errors import SymbolError
from dbgauto.symbols.pdb import PdbFile, _Types, load_pdb, pdb_to_table
from dbgauto.symbols.server import SymbolFinder
from dbgauto.symbols.store import pdb_key
from dbgauto.symbols.sympath import parse_symbol_path

TOOLS = ("clang", "lld-link", "llvm-pdbutil", "llvm-readobj")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS), reason="needs clang, lld-link, llvm-pdbutil, llvm-readobj (apt)"
)

N_BIG = 2500  # members of one struct: its field list exceeds 64 KiB, so the compiler continues it (LF_INDEX)

SOURCE = """
struct list { struct list *next, *prev; };
struct proc {
    int pid; unsigned char name[15]; struct list links; unsigned flags : 3; unsigned more : 5;
    long long big; union { int i; float f; } u; struct list *arr[4]; const volatile short cv;
};
struct big { MEMBERS };
struct proc g_proc;
struct big g_big;
int counter = 5;
__declspec(noinline) static int helper(int x) { volatile int y = x * 3; return y + 1; }
__declspec(dllexport) int process_pid(struct proc *p) { return p->pid + helper(p->flags); }
__declspec(dllexport) int walk(struct list *l) {
    int n = 0; while (l && n < 100) { l = l->next; n++; } return n + counter;
}
__declspec(dllexport) int big_sum(struct big *b) { return b->m0 + b->LAST; }
""".replace("MEMBERS", " ".join(f"int m{i};" for i in range(N_BIG))).replace("LAST", f"m{N_BIG - 1}")


def _build(tmp: Path, target: str) -> tuple[Path, Path]:
    (tmp / "a.c").write_text(SOURCE)
    subprocess.run(["clang", f"--target={target}", "-O1", "-c", "-g", "-gcodeview", "a.c", "-o", "a.obj"],
                   cwd=tmp, check=True, capture_output=True)
    subprocess.run(["lld-link", "/dll", "/noentry", "/nodefaultlib", "/debug", "/out:drv.dll", "/pdb:drv.pdb",
                    "a.obj"], cwd=tmp, check=True, capture_output=True)
    return tmp / "drv.dll", tmp / "drv.pdb"


@pytest.fixture(scope="module", params=["x86_64-pc-windows-msvc", "aarch64-pc-windows-msvc"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _build(tmp_path_factory.mktemp(request.param.split("-")[0]), request.param)


def _util(*args: str) -> str:
    return subprocess.run(["llvm-pdbutil", *args], check=True, capture_output=True, text=True).stdout


def _expected_symbols(pdb: Path) -> dict[str, tuple[int, int | None]]:
    """name → (rva, code size or None) from llvm-pdbutil's own dump (the independent reader)."""
    vas = [int(v, 16) for v in re.findall(r"^\s*([0-9A-F]+) virtual address$", _util("dump", "-section-headers",
                                                                                        str(pdb)), re.M)]
    out: dict[str, tuple[int, int | None]] = {}
    pub = _util("dump", "-publics", str(pdb))
    for name, seg, off in re.findall(r"S_PUB32 \[size = \d+\] `([^`]+)`\n\s+flags = [^,]*, addr = (\d+):(\d+)", pub):
        out[name] = (vas[int(seg) - 1] + int(off), None)
    syms = _util("dump", "-symbols", str(pdb))
    for name, seg, off, size in re.findall(
        r"S_[GL]PROC32 \[size = \d+\] `([^`]+)`\n\s+parent = \d+, end = \d+, addr = (\d+):(\d+), code size = (\d+)",
        syms,
    ):
        out[name] = (vas[int(seg) - 1] + int(off), int(size))
    return out


def _expected_fields(pdb: Path, struct_name: str) -> tuple[int, dict[str, int]]:
    types = _util("dump", "-types", str(pdb))
    records = {int(ti, 16): body for ti, body in re.findall(r"^\s*0x([0-9A-F]+) \| (.*?)(?=^\s*0x[0-9A-F]+ \||\Z)",
                                                             types, re.M | re.S)}
    for body in records.values():
        m = re.match(rf"LF_STRUCTURE \[size = \d+\] `{struct_name}`\n.*field list: 0x([0-9A-F]+)\n.*sizeof (\d+)",
                     body, re.S)
        if m:
            fields: dict[str, int] = {}
            todo = [int(m.group(1), 16)]
            while todo:
                fl = records[todo.pop()]
                fields.update((n, int(o)) for n, o in re.findall(r"LF_MEMBER \[name = `(\w+)`, .*?offset = (\d+)", fl))
                todo += [int(x, 16) for x in re.findall(r"LF_INDEX \[0x([0-9A-F]+)\]", fl)]
            return int(m.group(2)), fields
    raise AssertionError(f"{struct_name} not in llvm-pdbutil's output")


def test_identity_matches_the_images_rsds_record(built: tuple[Path, Path]) -> None:
    dll, pdb = built
    info, table = pdb_to_table(pdb.read_bytes(), str(pdb))
    ro = subprocess.run(["llvm-readobj", "--coff-debug-directory", str(dll)], check=True, capture_output=True,
                        text=True).stdout
    guid_bytes = bytes(int(x, 16) for x in re.search(r"PDBGUID: \(([0-9A-F ]+)\)", ro).group(1).split())
    age = int(re.search(r"PDBAge: (\d+)", ro).group(1))
    assert info.guid == uuid.UUID(bytes_le=guid_bytes).hex.upper()
    assert info.age == age
    summary = _util("dump", "-summary", str(pdb))
    assert info.guid == re.search(r"GUID: \{([0-9A-F-]+)\}", summary).group(1).replace("-", "")
    assert table.pdb_id == f"{info.guid}{age:X}"


def test_symbols_and_function_sizes_match_llvm_pdbutil(built: tuple[Path, Path]) -> None:
    _, pdb = built
    _, table = pdb_to_table(pdb.read_bytes(), str(pdb))
    expected = _expected_symbols(pdb)
    assert {"process_pid", "walk", "big_sum", "helper", "counter", "g_proc"} <= set(expected)
    for name, (rva, size) in expected.items():
        assert table.rva(name) == rva, name
        if size is not None:
            assert table.function_at(rva + size - 1) == (name, size - 1, True)
            nxt = table.function_at(rva + size)
            assert nxt is None or nxt.name != name
    # data symbols never name code
    assert table.function_at(expected["g_proc"][0] + 4) is None
    assert table.function_at(expected["counter"][0]) is None


@pytest.mark.parametrize("name", ["proc", "list", "big"])
def test_struct_layouts_match_llvm_pdbutil(built: tuple[Path, Path], name: str) -> None:
    _, pdb = built
    _, table = pdb_to_table(pdb.read_bytes(), str(pdb))
    size, fields = _expected_fields(pdb, name)
    t = table.type(name)
    assert t is not None
    assert t.size == size
    assert {k: f.offset for k, f in t.fields.items()} == fields
    if name == "big":
        assert len(fields) == N_BIG  # the continuation (LF_INDEX) was followed
    if name == "proc":
        assert t.fields["name"].type == "unsigned char[15]"
        assert t.fields["links"].type == "list"
        assert t.fields["arr"].type == "list*[4]"
        assert t.fields["more"].type == "unsigned int:5@3"
        assert table.field_offset("proc", "links.prev") == fields["links"] + 8


def test_served_compressed_pdb_end_to_end(built: tuple[Path, Path], tmp_path: Path) -> None:
    """RSDS id → key → loopback server (CAB twin only) → downstream store → table, then the cache."""
    from symserver import serve

    _, pdb = built
    info, _ = pdb_to_table(pdb.read_bytes(), str(pdb))
    key = pdb_key("drv.pdb", info.guid, info.age)
    with serve() as (url, tree):
        tree.files[f"symbols/{key.compressed_path}"] = build_cab([("drv.pdb", pdb.read_bytes())])
        finder = SymbolFinder(parse_symbol_path(f"srv*{tmp_path / 'store'}*{url}"), cache_dir=tmp_path / "c")
        local = finder.find(key)
    assert local is not None
    assert local.read_bytes() == pdb.read_bytes()
    table = load_pdb(local, tmp_path / "c")
    again = load_pdb(local, tmp_path / "c")
    assert again.to_bytes() == table.to_bytes()
    assert len(list((tmp_path / "c" / "tables").iterdir())) == 1
    assert isinstance(tree, ServedTree)


# --- hostile input ------------------------------------------------------------------------------------------------


def _x64_pdb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _build(tmp_path_factory.mktemp("hostile"), "x86_64-pc-windows-msvc")[1].read_bytes()


@pytest.fixture(scope="module")
def real_pdb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _x64_pdb(tmp_path_factory)


def test_truncations_and_huge_counts_are_typed(real_pdb: bytes) -> None:
    for cut in (0, 31, 56, 4096, len(real_pdb) // 2, len(real_pdb) - 1):
        with pytest.raises(SymbolError, match=r"t\.pdb"):
            pdb_to_table(real_pdb[:cut], "t.pdb")
    bad = bytearray(real_pdb)
    bad[44:48] = struct.pack("<I", 0xFFFFFFF0)  # NumDirectoryBytes
    with pytest.raises(SymbolError, match="directory"):
        pdb_to_table(bytes(bad), "t.pdb")
    bs, map_addr = struct.unpack_from("<I", real_pdb, 32)[0], struct.unpack_from("<I", real_pdb, 52)[0]
    dir_block = struct.unpack_from("<I", real_pdb, map_addr * bs)[0]
    bad = bytearray(real_pdb)
    bad[dir_block * bs : dir_block * bs + 4] = struct.pack("<I", 0x7FFFFFFF)  # NumStreams
    with pytest.raises(SymbolError, match="streams do not fit"):
        pdb_to_table(bytes(bad), "t.pdb")
    bad = bytearray(real_pdb)
    bad[dir_block * bs + 4 * 3 : dir_block * bs + 4 * 4] = struct.pack("<I", 0x7FFFFFF0)  # stream 2 (TPI) size
    with pytest.raises(SymbolError, match="more than the file"):
        pdb_to_table(bytes(bad), "t.pdb")


def test_looping_type_references_terminate(real_pdb: bytes) -> None:
    def rec(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-(len(body) + 2) % 4)
        return struct.pack("<HH", len(body) + 2, kind) + body

    # 0x1000: a field list whose LF_INDEX continues to itself; 0x1001: a pointer to itself;
    # 0x1002: a struct over 0x1000 with a member of type 0x1001
    fl = struct.pack("<HHI", 0x150D, 3, 0x1001) + struct.pack("<H", 0) + b"m\0" + b"\xf1" * 0
    fl += struct.pack("<HHI", 0x1404, 0, 0x1000)
    records = rec(0x1203, fl) + rec(0x1002, struct.pack("<II", 0x1001, 0x0001000C))
    records += rec(0x1505, struct.pack("<HHIII", 1, 0, 0x1000, 0, 0) + struct.pack("<H", 8) + b"loop\0")
    header = struct.pack("<5I", 0x0131CA0B, 56, 0x1000, 0x1003, len(records)) + b"\0" * 36
    types = _Types(header + records, PdbFile(real_pdb, "t.pdb"))
    s = types.structures()
    assert s["loop"][0] == 8
    assert s["loop"][2]["m"][0] == 0
    assert s["loop"][2]["m"][1].endswith("*")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_pdb_reader_only_raises_symbol_error(real_pdb: bytes, data: st.DataObject) -> None:
    buf = bytearray(real_pdb)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(buf) - 4))
        buf[at : at + 4] = data.draw(st.binary(min_size=4, max_size=4))
    cut = data.draw(st.integers(0, len(buf)))
    with contextlib.suppress(SymbolError):
        pdb_to_table(bytes(buf[:cut]) if data.draw(st.booleans()) else bytes(buf), "f.pdb")
