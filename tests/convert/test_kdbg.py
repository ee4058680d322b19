"""KDBG decoding (Windows 8+ x64) with the real sample's KDBG: the converter's decoder against the inflater's
independent encoder, and the symbol-less key search in nt's code."""

from __future__ import annotations

from typing import Any

import pytest
from dbgauto_testkit import dumpinflate

from dbgauto.errors import ConversionError, MemoryAccessError
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.kdbg import KdbgKeys, decode_words, encode_words, find_keys_in_code, read_kdbg

KEYS = KdbgKeys(0x5A3C96E1D27B480F, 0x1F2E3D4C5B6A7988, 0xFFFFF8047C7F0800)


def _reader(blob: bytes, va: int) -> Any:
    def read(addr: int, size: int) -> bytes | None:
        if va <= addr and addr + size <= va + len(blob):
            return blob[addr - va : addr - va + size]
        return None

    return read


def test_decoder_inverts_the_inflaters_encoder(small: Any) -> None:
    enc = dumpinflate.encode_kdbg(small.kdbg, KEYS.wait_never, KEYS.wait_always, KEYS.block_encoded_va)
    assert enc[0x10:0x14] != b"KDBG"
    assert decode_words(enc, KEYS) == small.kdbg
    assert encode_words(small.kdbg, KEYS) == enc


def test_read_kdbg_plain_encoded_and_wrong_keys(small: Any) -> None:
    plain = read_kdbg(_reader(small.kdbg, small.kdbg_va), small.kdbg_va)
    assert not plain.encoded
    assert plain.raw == small.kdbg
    assert plain.fields["KernBase"] == 0xFFFFF8047BA00000
    assert plain.fields["PsLoadedModuleList"] == 0xFFFFF8047C62A390
    enc = encode_words(small.kdbg, KEYS)
    got = read_kdbg(_reader(enc, small.kdbg_va), small.kdbg_va, keys=KEYS)
    assert got.encoded
    assert got.raw == small.kdbg
    with pytest.raises(ConversionError, match="keys given"):
        read_kdbg(_reader(enc, small.kdbg_va), small.kdbg_va, keys=KdbgKeys(1, 2, 3))
    with pytest.raises(ConversionError, match="not in the dump"):
        read_kdbg(_reader(b"", 0), small.kdbg_va)
    with pytest.raises(ConversionError, match="no KdDebuggerDataBlock"):
        read_kdbg(_reader(small.kdbg, small.kdbg_va), None)


def test_keys_found_in_nt_code_of_the_encoded_inflated_dump(cases: dict[str, Any], small: Any) -> None:
    case = cases["encoded-kdbg"]
    never, always, enc_va = case.inflated.world.keys
    with KernelDump.open(case.inflated.path) as dump:

        def read(va: int, size: int) -> bytes | None:
            try:
                return dump.read_virtual(va, size)
            except MemoryAccessError:
                return None

        nt = small.drivers[0]
        found = find_keys_in_code(read, nt.base, nt.size, small.kdbg_va)
        block = read_kdbg(read, small.kdbg_va, nt_base=nt.base, nt_size=nt.size)
    assert KdbgKeys(never, always, enc_va) in found
    assert block.encoded
    assert block.keys == KdbgKeys(never, always, enc_va)
    assert block.raw == small.kdbg


def test_found_keys_need_the_kdbg_anchor(small: Any) -> None:
    """A cmp/mov pattern that does not lea the KDBG is not taken for KdCopyDataBlock."""
    base = 0xFFFFF80000000000
    code = bytearray(0x1000)
    code[0:7] = b"\x80\x3d" + (0x800 - 7).to_bytes(4, "little") + b"\x00"
    code[7:14] = b"\x48\x8b\x05" + (0x808 - 14).to_bytes(4, "little")
    code[14:21] = b"\x4c\x8b\x15" + (0x810 - 21).to_bytes(4, "little")
    assert find_keys_in_code(_reader(bytes(code), base), base, 0x1000, small.kdbg_va) == []
