"""LZX cabinets (what Microsoft's symbol server serves as ``name.pd_``), decoded by dbgauto.symbols.lzx.

No LZX cabinet or LZX encoder ships in a Debian/PyPI/npm package, so the cabinets come from the testkit's
encoder (written from the LZX description, never importing dbgauto) and every one is first extracted by
Debian's ``cabextract`` (libmspack, an independent reader): a test asserts that cabextract gives back the
original bytes AND that dbgauto does. Hostile inputs are checked to be refused by both where they are
malformed LZX. The hostile cabinets of Debian's ``libgcab-tests`` are read when that package is installed.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import struct
import subprocess
import sysconfig
from pathlib import Path

import pytest
from dbgauto_testkit.cabwriter import build_cab
from dbgauto_testkit.lzxwriter import (
    ALIGNED,
    SLOTS,
    UNCOMPRESSED,
    VERBATIM,
    BitWriter,
    build_lzx_cab,
    canonical_codes,
    compress,
    e8_encode,
    pdb_like,
    write_lens,
)
from dbgauto_testkit.winbuild import CHAIN_C, build
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from symserver import ServedTree

from dbgauto.errors import SymbolError
from dbgauto.symbols import lzx
from dbgauto.symbols.cab import extract_single, read_cab
from dbgauto.symbols.pdb import load_pdb
from dbgauto.symbols.server import SymbolFinder
from dbgauto.symbols.store import image_key, pdb_key
from dbgauto.symbols.sympath import parse_symbol_path

CABEXTRACT = shutil.which("cabextract")
needs_cabextract = pytest.mark.skipif(
    CABEXTRACT is None, reason="cabextract not installed (apt-get install cabextract; .ci/run installs it)"
)
GCAB_TESTS = Path("/usr/libexec/installed-tests/libgcab-1.0")


def cabextract(tmp: Path, cab: bytes, name: str) -> bytes | None:
    """The member as Debian's cabextract extracts it, or None when cabextract refuses the cabinet."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "in.cab").write_bytes(cab)
    out = tmp / "out"
    p = subprocess.run([CABEXTRACT, "-q", "-d", str(out), str(tmp / "in.cab")], capture_output=True, timeout=120)
    member = out / name
    return member.read_bytes() if p.returncode == 0 and member.exists() else None


def roundtrip(tmp: Path, data: bytes, window_bits: int = 21, **kw: object) -> bytes:
    """Build the LZX cabinet, require cabextract to give ``data`` back, then decode it with dbgauto."""
    cab = build_lzx_cab("payload.pdb", data, window_bits, **kw)  # type: ignore[arg-type]
    assert cabextract(tmp, cab, "payload.pdb") == data, "cabextract (libmspack) disagrees with the test encoder"
    m = extract_single(cab, "payload.pd_")
    assert m.name == "payload.pdb"
    return m.data


def machine_code(size: int) -> bytes:
    """Real x86-64 code with E8 calls: a slice of this Python's libpython (or its executable)."""
    for p in (
        Path(sysconfig.get_config_var("LIBDIR") or "/", sysconfig.get_config_var("INSTSONAME") or "-"),
        Path(os.path.realpath(shutil.which("python3") or "/")),
    ):
        if p.is_file() and p.stat().st_size >= 2 * size:
            data = p.read_bytes()
            at = min(1_000_000, len(data) // 4)  # past the ELF headers, in .text
            return data[at : at + size]
    pytest.skip("no compiled binary of at least 2x the sample size to take machine code from")


@needs_cabextract
@pytest.mark.parametrize("window_bits", range(15, 22))
def test_every_window_size_multi_frame(tmp_path: Path, window_bits: int) -> None:
    data = pdb_like(5 * lzx.FRAME_SIZE + 1234, seed=window_bits)  # six frames, six CFDATA blocks
    assert roundtrip(tmp_path, data, window_bits, block_types=(VERBATIM, ALIGNED), block_size=50_001) == data


@needs_cabextract
@pytest.mark.parametrize(
    ("types", "block_size"),
    [
        ((VERBATIM,), 1 << 20),  # one block spanning every frame
        ((ALIGNED,), 3 * lzx.FRAME_SIZE),
        ((UNCOMPRESSED,), 40_001),  # odd-sized stored blocks across frame ends (pad bytes)
        ((VERBATIM, UNCOMPRESSED, ALIGNED), 10_003),  # several blocks per frame, every kind after every kind
        ((UNCOMPRESSED, UNCOMPRESSED, VERBATIM), lzx.FRAME_SIZE),  # blocks ending exactly on frame ends
    ],
)
def test_block_types(tmp_path: Path, types: tuple[int, ...], block_size: int) -> None:
    data = pdb_like(200_000) + os.urandom(5_000) + b"\0" * 70_000 + b"abc" * 9_000
    assert roundtrip(tmp_path, data, 17, block_types=types, block_size=block_size) == data


@needs_cabextract
@pytest.mark.parametrize("e8", [False, True])
def test_e8_translation_on_real_machine_code(tmp_path: Path, e8: bool) -> None:
    data = machine_code(300_000)
    filesize = 12_000_000 if e8 else 0  # the translation size Microsoft's tools use for large inputs
    if e8:
        assert sum(a != b for a, b in zip(e8_encode(data, filesize), data, strict=True)) > 1000  # calls translated
    got = roundtrip(tmp_path, data, 16, e8_filesize=filesize, block_types=(ALIGNED, VERBATIM, UNCOMPRESSED))
    assert got == data


@needs_cabextract
def test_e8_edges_of_frames(tmp_path: Path) -> None:
    # E8 bytes in the last 10 bytes of frames, back to back, near offset 0 and at the final short frame
    rng = random.Random(3)
    data = bytearray(pdb_like(3 * lzx.FRAME_SIZE + 40))
    for pos in [0, 1, 5, 6, lzx.FRAME_SIZE - 11, lzx.FRAME_SIZE - 10, lzx.FRAME_SIZE - 7, lzx.FRAME_SIZE - 1]:
        for base in (0, lzx.FRAME_SIZE, 2 * lzx.FRAME_SIZE):
            data[base + pos] = 0xE8
            data[base + pos + 1 : base + pos + 5] = struct.pack("<i", rng.randint(-pos - base, 50_000))
    data[-12:] = b"\xe8" * 12
    assert roundtrip(tmp_path, bytes(data), 15, e8_filesize=60_000, block_types=(VERBATIM, UNCOMPRESSED)) == data


@needs_cabextract
def test_pdb_sized_payload(tmp_path: Path) -> None:
    data = pdb_like(3 << 20, seed=11)  # 96 frames, several blocks of each kind
    blocks = compress(data, 21, block_types=(VERBATIM, ALIGNED, UNCOMPRESSED), block_size=700_001)
    assert len(blocks) == 96
    cab = build_cab([("ntkrnlmp.pdb", data)], compression=3 | (21 << 8), blocks=blocks)
    assert len(cab) < len(data) // 2
    assert cabextract(tmp_path, cab, "ntkrnlmp.pdb") == data
    assert extract_single(cab, "ntkrnlmp.pd_").data == data


@needs_cabextract
def test_symbol_server_serves_lzx_pd_and_dl_(served: tuple[str, ServedTree], tmp_path: Path) -> None:
    url, tree = served
    dll = build(tmp_path / "b", "lzxdrv", "x64", c_source=CHAIN_C, cflags=("-g", "-gcodeview"))
    pdb = dll.with_suffix(".pdb")
    pdb_bytes, dll_bytes = pdb.read_bytes(), dll.read_bytes()
    kp = pdb_key("lzxdrv.pdb", "5278AFF8-6C34-1677-D7D7-835C85B7B844", 1)
    ki = image_key("lzxdrv.dll", 0x5F9A3B4A, 0x9000)
    pd_ = build_lzx_cab("lzxdrv.pdb", pdb_bytes, 21, block_types=(VERBATIM, ALIGNED))
    dl_ = build_lzx_cab("lzxdrv.dll", dll_bytes, 16, e8_filesize=len(dll_bytes), block_types=(ALIGNED,))
    assert cabextract(tmp_path / "x1", pd_, "lzxdrv.pdb") == pdb_bytes
    assert cabextract(tmp_path / "x2", dl_, "lzxdrv.dll") == dll_bytes
    tree.files[f"symbols/{kp.compressed_path}"] = pd_
    tree.files[f"symbols/{ki.compressed_path}"] = dl_
    finder = SymbolFinder(parse_symbol_path(f"srv*{tmp_path / 'down'}*{url}"), cache_dir=tmp_path / "cache")
    got_pdb, got_dll = finder.find(kp), finder.find(ki)
    assert got_pdb is not None
    assert got_pdb.read_bytes() == pdb_bytes
    assert got_dll is not None
    assert got_dll.read_bytes() == dll_bytes
    assert f"symbols/{kp.path}" in tree.log  # asked for the plain file first,
    assert f"symbols/{kp.compressed_path}" in tree.log  # then fell back to the .pd_
    table = load_pdb(got_pdb)
    assert {"leaf_c", "mid_b", "top_a"} <= {n.split("@")[0].lstrip("_") for n, _ in table.names("*")}
    # a corrupt LZX answer is recorded, not raised, and never stored
    bad = bytearray(pd_)
    bad[len(bad) // 2 : len(bad) // 2 + 64] = b"\xff" * 64
    kb = pdb_key("broken.pdb", "5278AFF8-6C34-1677-D7D7-835C85B7B844", 1)
    tree.files[f"symbols/{kb.compressed_path}"] = bytes(bad).replace(b"lzxdrv.pdb", b"broken.pdb")
    assert finder.find(kb) is None
    assert any("LZX" in e or "cabinet" in e for e in finder.stats.errors)
    assert not (tmp_path / "down" / kb.path).exists()


# ---- hostile input -------------------------------------------------------------------------------------


def handmade(main: dict[int, int], symbols: list[int], out_len: int, window_bits: int = 15) -> bytes:
    """One verbatim block with the given main-tree code lengths, emitting ``symbols`` (no E8 header)."""
    w = BitWriter()
    w.put(0, 1)
    w.put(VERBATIM, 3)
    w.put(out_len >> 8, 16)
    w.put(out_len & 0xFF, 8)
    n_main = 256 + 8 * SLOTS[window_bits]
    lens = [0] * n_main
    for s, ln in main.items():
        lens[s] = ln
    write_lens(w, [0] * n_main, lens, 0, 256)
    write_lens(w, [0] * n_main, lens, 256, n_main)
    write_lens(w, [0] * 249, [0] * 249, 0, 249)
    codes = canonical_codes(lens)
    for s in symbols:
        w.put(codes[s], lens[s])
    w.align()
    return bytes(w.out)


def cab_of(stream: bytes, out_len: int, window_bits: int = 15) -> bytes:
    sizes = [min(lzx.FRAME_SIZE, out_len - i) for i in range(0, out_len, lzx.FRAME_SIZE)]
    blocks = [(stream if i == 0 else b"", n) for i, n in enumerate(sizes)]
    return build_cab([("bad.pdb", b"\0" * out_len)], compression=3 | (window_bits << 8), blocks=blocks)


def test_handmade_stream_is_valid_when_it_should_be(tmp_path: Path) -> None:
    # the hostile variants below differ from this one only in the part they break
    cab = cab_of(handmade({65: 1, 256 + 3 * 8: 1}, [65, 256 + 3 * 8], 3), 3)  # 'A', then copy 2 from offset 1
    assert extract_single(cab, "bad.pd_").data == b"AAA"
    if CABEXTRACT:
        assert cabextract(tmp_path, cab, "bad.pdb") == b"AAA"


@pytest.mark.parametrize(
    ("main", "symbols", "block_len", "out_len", "reason"),
    [
        ({65: 1, 256: 1}, [256], 2, 2, "reaches before the data"),  # R0 = 1 at output 0
        ({65: 1, 256 + 8 * 20: 1}, [65, 256 + 8 * 20], 3, 3, "reaches before the data"),  # slot 20: offset >= 1022
        ({65: 1, 66: 1, 67: 1}, [65], 1, 1, "over-subscribed"),
        ({65: 1}, [65], 1, 1, "incomplete"),
        ({65: 2, 66: 2, 67: 2, 256 + 7: 2}, [65, 256 + 7], 20, 20, "length tree, which is empty"),
        ({65: 1, 256 + 3 * 8 + 1: 1}, [65] * 32767 + [256 + 3 * 8 + 1], 32770, 32770, "crosses the frame end"),
        ({65: 1, 256 + 3 * 8 + 1: 1}, [65, 256 + 3 * 8 + 1], 2, 10, "crosses the block end"),
    ],
)
def test_bad_streams_are_typed_errors(
    tmp_path: Path, main: dict[int, int], symbols: list[int], block_len: int, out_len: int, reason: str
) -> None:
    cab = cab_of(handmade(main, symbols, block_len), out_len)
    with pytest.raises(SymbolError, match=reason) as e:
        read_cab(cab, "bad.pd_")
    assert "bad.pd_" in str(e.value)
    if CABEXTRACT:
        assert cabextract(tmp_path, cab, "bad.pdb") is None  # the peer reader refuses it too


@needs_cabextract
def test_truncated_and_lying_cabinets(tmp_path: Path) -> None:
    data = pdb_like(4 * lzx.FRAME_SIZE + 999)
    blocks = compress(data, 18, block_types=(VERBATIM, UNCOMPRESSED, ALIGNED), block_size=30_000)
    good = build_cab([("a.pdb", data)], compression=3 | (18 << 8), blocks=blocks)
    assert cabextract(tmp_path, good, "a.pdb") == data
    for cut in (40, 60, 100, len(good) // 3, len(good) - 700, len(good) - 1):
        with pytest.raises(SymbolError, match=r"a\.pd_"):
            read_cab(good[:cut], "a.pd_")
    # the LZX bytes themselves cut short inside a consistent cabinet
    short = [*blocks[:-2], (blocks[-2][0][: len(blocks[-2][0]) // 2], blocks[-2][1]), (b"", blocks[-1][1])]
    with pytest.raises(SymbolError, match="LZX"):
        read_cab(build_cab([("a.pdb", data)], compression=3 | (18 << 8), blocks=short), "a.pd_")
    # declared sizes that lie
    for i, claim, reason in ((-1, blocks[-1][1] + 100, "LZX"), (1, 1000, "each but the last"), (0, 40000, "claims")):
        lying = list(blocks)
        lying[i] = (lying[i][0], claim)
        with pytest.raises(SymbolError, match=reason):
            read_cab(build_cab([("a.pdb", data)], compression=3 | (18 << 8), blocks=lying), "a.pd_")
    for wb in (14, 22, 31):
        with pytest.raises(SymbolError, match="window"):
            read_cab(build_cab([("a.pdb", data)], compression=3 | (wb << 8), blocks=blocks), "a.pd_")


@pytest.mark.skipif(not GCAB_TESTS.is_dir(), reason="Debian package libgcab-tests not installed")
@pytest.mark.parametrize("name", ["CVE-2014-9556.cab", "CVE-2015-4471.cab", "CVE-2014-9732.cab", "CVE-2015-4470.cab"])
def test_gcab_hostile_cabinets(name: str) -> None:
    with pytest.raises(SymbolError, match=name.replace(".", r"\.")):
        read_cab((GCAB_TESTS / name).read_bytes(), name)


def test_unrealistic_output_size_is_refused_early() -> None:
    with pytest.raises(SymbolError, match="window"):
        lzx.decompress(b"", 10, 12)
    with pytest.raises(SymbolError, match="unknown block type 0"):
        lzx.decompress(b"\0" * 8, 1 << 30, 21)  # zero bits: block type 0 is refused at once


_SMALL = build_lzx_cab("f.pdb", pdb_like(2 * lzx.FRAME_SIZE + 500, seed=5), 16, block_types=(ALIGNED, UNCOMPRESSED))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_SMALL) - 1), st.binary(min_size=1, max_size=6), st.integers(0, 300))
def test_fuzz_mutated_lzx_cabinets(at: int, patch: bytes, cut: int) -> None:
    base = bytearray(_SMALL)
    base[at : at + len(patch)] = patch
    for blob in (bytes(base), bytes(base[: len(base) - cut])):
        with contextlib.suppress(SymbolError):
            read_cab(blob, "f.pd_")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 3 * lzx.FRAME_SIZE), st.integers(15, 21))
def test_fuzz_junk_streams(junk: bytes, out_size: int, window_bits: int) -> None:
    with contextlib.suppress(SymbolError):
        out = lzx.decompress(junk, out_size, window_bits, source="junk")
        assert len(out) == out_size


@needs_cabextract
@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.sampled_from([b"Nt", b"Query", b"\xe8\x10\0\0\0", b"\0" * 9, b"\xff", b"ab"]), max_size=3000),
    st.binary(max_size=300),
    st.integers(15, 21),
    st.lists(st.sampled_from([VERBATIM, ALIGNED, UNCOMPRESSED]), min_size=1, max_size=3),
    st.integers(1, 70_000),
    st.booleans(),
)
def test_fuzz_roundtrip_against_cabextract(
    tmp_path_factory: pytest.TempPathFactory,
    parts: list[bytes],
    noise: bytes,
    window_bits: int,
    types: list[int],
    block_size: int,
    e8: bool,
) -> None:
    data = (b"".join(parts) * 3 + noise)[: 3 * lzx.FRAME_SIZE] or b"x"
    got = roundtrip(
        tmp_path_factory.mktemp("rt"),
        data,
        window_bits,
        e8_filesize=len(data) + 77 if e8 else 0,
        block_types=tuple(types),
        block_size=block_size,
    )
    assert got == data
