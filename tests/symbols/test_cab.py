"""CAB reading: cabinets made by gcab (an independent writer) and by a test writer from the format document."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from dbgauto_testkit.cabwriter import build_cab
from hypothesis import given, settings
from hypothesis import strategies as st

from dbgauto.errors import SymbolError, UnsupportedCompressionError
from dbgauto.symbols.cab import extract_single, is_cab, read_cab

needs_gcab = pytest.mark.skipif(shutil.which("gcab") is None, reason="gcab not installed (apt-get install gcab)")


@needs_gcab
@pytest.mark.parametrize("compress", [True, False])
def test_gcab_cabinets(tmp_path: Path, compress: bool) -> None:
    data = os.urandom(50_000) + b"symbol " * 40_000  # several 32 KiB blocks, incompressible and compressible
    (tmp_path / "ntkrnlmp.pdb").write_bytes(data)
    cab = tmp_path / "ntkrnlmp.pd_"
    args = ["gcab", "-c", "-n", *(["-z"] if compress else []), str(cab), str(tmp_path / "ntkrnlmp.pdb")]
    subprocess.run(args, check=True, capture_output=True)
    raw = cab.read_bytes()
    assert is_cab(raw)
    m = extract_single(raw, str(cab))
    assert (m.name, m.size, m.data) == ("ntkrnlmp.pdb", len(data), data)


def test_handmade_multi_member_cabinet() -> None:
    files = [("a.sys", b"A" * 70_000), ("b.pdb", bytes(range(256)) * 300)]
    members = read_cab(build_cab(files))
    assert [(m.name, m.data) for m in members] == files
    with pytest.raises(SymbolError, match="2 members"):
        extract_single(build_cab(files), "x.sy_")


@pytest.mark.parametrize("name", ["../evil.pdb", "..\\evil.pdb", "/etc/passwd", "C:\\Windows\\x.sys", "a/../../b"])
def test_path_traversal_names_are_refused(name: str) -> None:
    with pytest.raises(SymbolError, match="escape"):
        read_cab(build_cab([(name, b"x")]), "t.pd_")


def test_quantum_is_typed_unsupported() -> None:  # LZX is decoded: tests/symbols/test_lzx.py
    patched = bytearray(build_cab([("a.pdb", b"abc")], compression=0))
    patched[36 + 6 : 36 + 8] = (2).to_bytes(2, "little")
    with pytest.raises(UnsupportedCompressionError, match="Quantum"):
        read_cab(bytes(patched), "a.pd_")


def test_truncated_and_lying_cabinets() -> None:
    raw = build_cab([("a.pdb", b"hello" * 10_000)])
    with pytest.raises(SymbolError, match=r"a\.pd_"):
        read_cab(raw[: len(raw) - 10], "a.pd_")
    with pytest.raises(SymbolError, match="MSCF"):
        read_cab(b"PK\3\4" + raw[4:])
    huge = bytearray(raw)
    huge[44:48] = (0xFFFFFFF0).to_bytes(4, "little")  # cbFile of the first member
    with pytest.raises(SymbolError, match="claims"):
        read_cab(bytes(huge), max_output=1 << 20)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 300), st.binary(min_size=1, max_size=8))
def test_fuzz_never_crashes_untyped(junk: bytes, at: int, patch: bytes) -> None:
    base = bytearray(build_cab([("a.pdb", b"payload" * 50)]))
    at = min(at, len(base) - 1)
    base[at : at + len(patch)] = patch
    for blob in (bytes(base), b"MSCF" + junk, bytes(base[: at + 1])):
        with contextlib.suppress(SymbolError):
            read_cab(blob)
