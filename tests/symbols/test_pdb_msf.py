"""MSF containers whose stream directory needs more than one block-map block (issue 11).

The superblock's "block map address" is the first element of an array (``big_stream_pages_map[]`` in
Microsoft's pdb-rs ``msf.md``): each listed block holds ``block_size / 4`` directory block numbers. lld-link
refuses page sizes below 4096 (``/pdbpagesize:512`` → "invalid argument"), and at 4096 one map block covers a
4 MiB directory (a PDB of over 4 GiB), so lld never writes a second element; MSVC PDBs with small pages do
(LLVM's own reader then stops with "Too many directory blocks").

So the test takes a real PDB that clang + lld-link build here (≈ 13 MB of real type records) and re-lays its
streams, unchanged, into 512-byte pages the way the format describes (pages shuffled, FPM pages skipped): its
directory then spans two map blocks. The expected stream bytes come from ``llvm-pdbutil export`` of the
original, the identity from ``llvm-pdbutil dump -summary``.
"""

from __future__ import annotations

import contextlib
import random
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbgauto.errors import SymbolError
from dbgauto.symbols.pdb import MSF_MAGIC, PdbFile, pdb_to_table

TOOLS = ("clang", "lld-link", "llvm-pdbutil")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS), reason="needs clang, lld-link, llvm-pdbutil (apt: clang lld llvm)"
)

N_STRUCTS = 6000  # ≈ 13 MB of TPI records: 25,000 pages of 512 bytes, a directory of two map blocks


def _source() -> str:
    parts = []
    for s in range(N_STRUCTS):
        members = " ".join(f"int field_{s}_{i}; void *ptr_{s}_{i};" for i in range(40))
        parts.append(f"struct S{s} {{ {members} struct S{s} *self; }}; struct S{s} g{s};")
    fn = "__declspec(dllexport) int fn{0}(struct S{0} *a) {{ return a->field_{0}_3 + {0}; }}"
    parts.extend(fn.format(f) for f in range(40))
    return "\n".join(parts)


def _util(*args: str) -> str:
    return subprocess.run(["llvm-pdbutil", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("msf")
    (d / "t.c").write_text(_source())
    subprocess.run(["clang", "--target=x86_64-pc-windows-msvc", "-O0", "-c", "-g", "-gcodeview", "t.c", "-o", "t.obj"],
                   cwd=d, check=True, capture_output=True)  # fmt: skip
    subprocess.run(["lld-link", "/dll", "/noentry", "/nodefaultlib", "/debug", "/out:t.dll", "/pdb:t.pdb", "t.obj"],
                   cwd=d, check=True, capture_output=True)  # fmt: skip
    return d / "t.pdb"


@pytest.fixture(scope="module")
def exported(original: Path) -> list[bytes]:
    """Every stream's bytes as llvm-pdbutil (the independent reader) exports them from the 4 KiB original."""
    count = int(re.search(r"Number of streams: (\d+)", _util("dump", "-summary", str(original))).group(1))
    out = []
    for i in range(count):
        dest = original.parent / f"stream{i}.bin"
        _util("export", f"--stream={i}", f"--out={dest}", str(original))
        out.append(dest.read_bytes())
    return out


def repack(streams: list[bytes], block_size: int, seed: int = 11) -> bytes:
    """Lay ``streams`` out as a big-MSF file with ``block_size`` pages: page 0 the header, pages 1 and 2 of every
    interval of ``block_size`` pages the free page maps, every other page handed out in a shuffled order
    (streams, then the directory, then the directory's block map), the map's page numbers in the header's
    array from offset 52."""
    bs = block_size
    pages_of = [-(-len(s) // bs) for s in streams]
    dir_bytes = 4 * (1 + len(streams) + sum(pages_of))
    n_dir = -(-dir_bytes // bs)
    n_map = -(-(4 * n_dir) // bs)
    need = sum(pages_of) + n_dir + n_map
    usable: list[int] = []
    p = 1
    while len(usable) < need:
        if p % bs not in (1, 2):
            usable.append(p)
        p += 1
    random.Random(seed).shuffle(usable)
    it = iter(usable)
    num_pages = max(usable) + 1
    out = bytearray(num_pages * bs)

    def put(pages: list[int], data: bytes) -> None:
        for k, page in enumerate(pages):
            chunk = data[k * bs : (k + 1) * bs]
            out[page * bs : page * bs + len(chunk)] = chunk

    stream_pages = []
    for s, n in zip(streams, pages_of, strict=True):
        pages = [next(it) for _ in range(n)]
        put(pages, s)
        stream_pages.append(pages)
    directory = struct.pack(f"<I{len(streams)}I", len(streams), *(len(s) for s in streams))
    directory += b"".join(struct.pack(f"<{len(ps)}I", *ps) for ps in stream_pages)
    assert len(directory) == dir_bytes
    dir_pages = [next(it) for _ in range(n_dir)]
    put(dir_pages, directory)
    map_pages = [next(it) for _ in range(n_map)]
    put(map_pages, struct.pack(f"<{n_dir}I", *dir_pages))
    header = MSF_MAGIC + struct.pack("<5I", bs, 1, num_pages, dir_bytes, 0) + struct.pack(f"<{n_map}I", *map_pages)
    assert len(header) <= bs
    out[: len(header)] = header
    return bytes(out)


@pytest.fixture(scope="module")
def repacked(exported: list[bytes]) -> bytes:
    return repack(exported, 512)


@pytest.fixture(scope="module")
def direct(original: Path) -> bytes:
    """The table read from lld's own 4 KiB layout (that reading is checked against llvm-pdbutil in test_pdb)."""
    return pdb_to_table(original.read_bytes(), "t.pdb")[1].to_bytes()


def _map_blocks(data: bytes) -> int:
    bs, _fpm, _n, dir_bytes = struct.unpack_from("<4I", data, 32)
    return -(-(4 * -(-dir_bytes // bs)) // bs)


def test_the_repacked_pdb_needs_two_map_blocks_and_llvm_refuses_it(repacked: bytes, tmp_path: Path) -> None:
    assert _map_blocks(repacked) == 2
    (tmp_path / "r.pdb").write_bytes(repacked)
    p = subprocess.run(["llvm-pdbutil", "dump", "-summary", str(tmp_path / "r.pdb")], capture_output=True, text=True)
    assert "Too many directory blocks" in p.stdout + p.stderr


def test_every_stream_equals_llvm_pdbutils_export(repacked: bytes, exported: list[bytes]) -> None:
    pdb = PdbFile(repacked, "r.pdb")
    assert pdb.block_size == 512
    assert pdb.stream_count == len(exported)
    for i, want in enumerate(exported):
        assert pdb.stream(i) == want, f"stream {i}"


@pytest.mark.parametrize("block_size", [512, 1024, 4096])
def test_table_is_the_same_at_every_page_size(
    original: Path, exported: list[bytes], repacked: bytes, direct: bytes, block_size: int
) -> None:
    data = repacked if block_size == 512 else repack(exported, block_size, seed=block_size)
    info, table = pdb_to_table(data, "t.pdb")
    summary = _util("dump", "-summary", str(original))
    assert info.guid == re.search(r"GUID: \{([0-9A-F-]+)\}", summary).group(1).replace("-", "")
    assert info.age == int(re.search(r"Age: (\d+)", summary).group(1))
    assert table.to_bytes() == direct
    s = table.type("S5999")
    assert s is not None
    assert s.size == 40 * 16 + 8  # 40 × (int, 4 pad, pointer) + the self pointer, by the x64 C layout rules
    assert s.fields["ptr_5999_39"].offset == 39 * 16 + 8
    assert table.function_at(table.rva("fn7")) is not None


# --- hostile block maps -------------------------------------------------------------------------------------------


def test_directory_needing_more_map_blocks_than_the_header_lists_is_typed(repacked: bytes) -> None:
    bad = bytearray(repacked)
    bad[44:48] = struct.pack("<I", 8 << 20)  # 16,384 directory blocks → 128 map blocks; page 0 lists ≤ 115
    assert len(bad) > 8 << 20
    with pytest.raises(SymbolError, match=r"r\.pdb.*needs 128 block-map blocks.*at most 115"):
        PdbFile(bytes(bad), "r.pdb")


@pytest.mark.parametrize(("value", "match"), [(0, "block 0"), (0x7FFFFFFF, "past the end")])
def test_second_map_block_out_of_range_is_typed(repacked: bytes, value: int, match: str) -> None:
    bad = bytearray(repacked)
    bad[56:60] = struct.pack("<I", value)
    with pytest.raises(SymbolError, match=match):
        PdbFile(bytes(bad), "r.pdb")


def test_truncated_inside_the_map_or_directory_is_typed(repacked: bytes) -> None:
    bs = 512
    map2 = struct.unpack_from("<I", repacked, 56)[0]
    with pytest.raises(SymbolError, match=r"r\.pdb"):
        PdbFile(repacked[: map2 * bs + 100], "r.pdb")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_header_and_map_blocks_only_raise_symbol_error(repacked: bytes, data: st.DataObject) -> None:
    """Corrupt the header, the two map blocks and the directory's first blocks: a typed error or a reader."""
    bs = 512
    maps = struct.unpack_from("<2I", repacked, 52)
    first_dir = [struct.unpack_from("<I", repacked, m * bs)[0] for m in maps]
    regions = [(0, 64), *((m * bs, bs) for m in maps), *((d * bs, bs) for d in first_dir)]
    buf = bytearray(repacked)
    for _ in range(data.draw(st.integers(1, 6))):
        start, length = data.draw(st.sampled_from(regions))
        at = start + data.draw(st.integers(0, length - 4))
        buf[at : at + 4] = data.draw(st.binary(min_size=4, max_size=4))
    with contextlib.suppress(SymbolError):
        pdb = PdbFile(bytes(buf), "f.pdb")
        for i in range(min(pdb.stream_count, 4)):
            pdb.stream(i)
