"""KDDEBUGGER_DATA64 in a large dump: find it, check it, and decode it when Windows 8+ x64 keeps it encoded.

Facts (``../shared/spec/kd-structures.md`` §3): the block sits at the header's KdDebuggerDataBlock; its OwnerTag
(+0x10) reads ``KDBG`` in clear. On x64 Windows 8+ without an attached debugger the kernel keeps it encoded
(``nt!KdpDataBlockEncoded`` = 1) and ``nt!KdCopyDataBlock`` decodes it, word by word, with ``nt!KiWaitNever``,
``nt!KiWaitAlways`` and the address of ``KdpDataBlockEncoded``::

    w ^= never;  w = rol64(w, never & 0xFF);  w ^= enc_va | 0xFFFF000000000000;  w = bswap64(w);  w ^= always

Without symbols the three inputs are found the way volatility 2 finds them: in nt's code, a
``cmp byte ptr [rip+X], 0`` (``80 3D rel32 00``: X = KdpDataBlockEncoded) followed closely by a
``lea reg, [rip+Y]`` whose Y is the KdDebuggerDataBlock itself (the anchor), and RIP-relative ``mov``/``xor``
loads of two 64-bit globals (KiWaitNever, KiWaitAlways). The pair is confirmed by decoding the header: only the
right keys give OwnerTag ``KDBG`` and the expected Size. Callers who know the values (symbols) pass them.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from dbgauto.errors import ConversionError, MemoryAccessError
from dbgauto.kdump.constants import PAGE_SIZE
from dbgauto.kdump.structs.kd import KDBG_HEADER_SIZE, KDBG_OWNER_TAG_VALUE, decode_kdbg_fields, kdbg_header

log = logging.getLogger(__name__)

__all__ = ["KdbgBlock", "KdbgKeys", "decode_words", "encode_words", "find_keys_in_code", "read_kdbg"]

_M64: Final = 0xFFFF_FFFF_FFFF_FFFF
_SIGN: Final = 0xFFFF_0000_0000_0000
KDBG_MIN_SIZE: Final = 0x80
KDBG_MAX_READ: Final = 0x1000  # a KDBG never spans more than this; an untrusted Size is bounded by it
NT_SCAN_LIMIT: Final = 64 << 20  # never scan more than 64 MiB of nt's image
_CMP_BYTE_ZERO: Final = re.compile(rb"\x80\x3d[\s\S]{4}\x00")
_WINDOW: Final = 0x100  # bytes after the cmp searched for the lea and the two loads

ReadFn = Callable[[int, int], bytes | None]
"""``read(va, size)`` → bytes, or None when any of it is absent."""


@dataclass(frozen=True, slots=True)
class KdbgKeys:
    """The three inputs of the Windows 8+ x64 KDBG encoding."""

    wait_never: int
    wait_always: int
    block_encoded_va: int  # address of nt!KdpDataBlockEncoded


@dataclass(frozen=True, slots=True)
class KdbgBlock:
    """The decoded debugger data block: raw bytes (Header.Size long), where it lives, how it was found."""

    va: int
    raw: bytes
    fields: dict[str, int]
    encoded: bool
    keys: KdbgKeys | None = None

    @property
    def size(self) -> int:
        return len(self.raw)


def _rol(v: int, n: int) -> int:
    n &= 63
    return ((v << n) | (v >> (64 - n))) & _M64 if n else v


def _ror(v: int, n: int) -> int:
    return _rol(v, (64 - (n & 63)) & 63)


def _bswap(v: int) -> int:
    return int.from_bytes(v.to_bytes(8, "little"), "big")


def decode_words(data: bytes, keys: KdbgKeys) -> bytes:
    """Decode an encoded KDBG image (whole 8-byte words; a trailing partial word is kept as is)."""
    n = len(data) // 8
    words = struct.unpack_from(f"<{n}Q", data)
    never, always = keys.wait_never & _M64, keys.wait_always & _M64
    enc = (keys.block_encoded_va | _SIGN) & _M64
    out = [_bswap(_rol(w ^ never, never & 0xFF) ^ enc) ^ always for w in words]
    return struct.pack(f"<{n}Q", *out) + data[n * 8 :]


def encode_words(data: bytes, keys: KdbgKeys) -> bytes:
    """The inverse of :func:`decode_words` (what the kernel does; used by test tooling)."""
    n = len(data) // 8
    words = struct.unpack_from(f"<{n}Q", data)
    never, always = keys.wait_never & _M64, keys.wait_always & _M64
    enc = (keys.block_encoded_va | _SIGN) & _M64
    out = [_ror(_bswap(w ^ always) ^ enc, never & 0xFF) ^ never for w in words]
    return struct.pack(f"<{n}Q", *out) + data[n * 8 :]


def _plausible(tag: int, size: int) -> bool:
    return tag == KDBG_OWNER_TAG_VALUE and KDBG_MIN_SIZE <= size <= KDBG_MAX_READ and size % 8 == 0


def read_kdbg(
    read: ReadFn,
    va: int | None,
    *,
    keys: KdbgKeys | None = None,
    nt_base: int | None = None,
    nt_size: int | None = None,
    source: str = "dump",
) -> KdbgBlock:
    """The KDBG at ``va``, decoded if needed. ConversionError (one line) when it is absent or cannot be decoded.

    ``keys`` are used when given (symbols); otherwise, for an encoded block, nt's code at ``nt_base`` is scanned.
    """
    if va is None:
        raise ConversionError(f"{source}: the header has no KdDebuggerDataBlock address")
    head = read(va, KDBG_HEADER_SIZE)
    if head is None:
        raise ConversionError(f"{source}: KDBG at {va:#x} is not in the dump")
    tag, size = kdbg_header(head) or (0, 0)
    if _plausible(tag, size):
        raw = read(va, size)
        if raw is None:
            raise ConversionError(f"{source}: KDBG at {va:#x} ({size:#x} bytes) is only partly in the dump")
        return KdbgBlock(va, raw, decode_kdbg_fields(raw), encoded=False)
    candidates: list[KdbgKeys] = []
    if keys is not None:
        candidates.append(keys)
    elif nt_base is not None:
        candidates.extend(find_keys_in_code(read, nt_base, nt_size, va))
    for k in candidates:
        dec = decode_words(head, k)
        tag, size = kdbg_header(dec) or (0, 0)
        if not _plausible(tag, size):
            continue
        enc_raw = read(va, size)
        if enc_raw is None:
            raise ConversionError(f"{source}: encoded KDBG at {va:#x} ({size:#x} bytes) is only partly in the dump")
        raw = decode_words(enc_raw, k)
        log.debug("KDBG at %#x decoded (KdpDataBlockEncoded at %#x)", va, k.block_encoded_va)
        return KdbgBlock(va, raw, decode_kdbg_fields(raw), encoded=True, keys=k)
    if keys is not None:
        raise ConversionError(f"{source}: KDBG at {va:#x} does not decode to 'KDBG' with the keys given")
    raise ConversionError(
        f"{source}: KDBG at {va:#x} has no 'KDBG' OwnerTag (damaged, or encoded and nt!KdCopyDataBlock was not "
        "found to decode it; pass KiWaitNever/KiWaitAlways/KdpDataBlockEncoded)"
    )


def _rip_target(code: bytes, pos: int, length: int, base: int) -> int:
    rel = struct.unpack_from("<i", code, pos + length - 4)[0]
    return (base + pos + length + rel) & _M64


def _scan_window(code: bytes, start: int, base: int, kdbg_va: int) -> tuple[bool, list[int]]:
    """In ``code[start:start+_WINDOW]``: is there a ``lea r, [rip+kdbg]``, and which qword globals are loaded."""
    end = min(len(code) - 7, start + _WINDOW)
    anchored = False
    loads: list[int] = []
    i = start
    while i < end:
        rex, op, modrm = code[i], code[i + 1], code[i + 2]
        if rex in (0x48, 0x4C) and (modrm & 0xC7) == 0x05 and op in (0x8D, 0x8B, 0x33):
            target = _rip_target(code, i, 7, base)
            if op == 0x8D and target == kdbg_va:
                anchored = True
            elif op in (0x8B, 0x33) and target not in loads:
                loads.append(target)
            i += 7
            continue
        i += 1
    return anchored, loads


def _nt_image(read: ReadFn, nt_base: int, nt_size: int | None) -> Iterable[tuple[int, bytes]]:
    """Runs of consecutive present pages of nt's image as (va, bytes)."""
    size = min(nt_size or NT_SCAN_LIMIT, NT_SCAN_LIMIT)
    run_va, chunks = nt_base, []
    for va in range(nt_base, nt_base + size, PAGE_SIZE):
        try:
            page = read(va, PAGE_SIZE)
        except MemoryAccessError:
            page = None
        if page is None:
            if chunks:
                yield run_va, b"".join(chunks)
            chunks, run_va = [], va + PAGE_SIZE
            continue
        chunks.append(page)
    if chunks:
        yield run_va, b"".join(chunks)


def find_keys_in_code(read: ReadFn, nt_base: int, nt_size: int | None, kdbg_va: int) -> list[KdbgKeys]:
    """Candidate keys from KdCopyDataBlock-like code in nt's image (unconfirmed; :func:`read_kdbg` confirms)."""
    out: list[KdbgKeys] = []
    for base, code in _nt_image(read, nt_base, nt_size):
        for m in _CMP_BYTE_ZERO.finditer(code):
            pos = m.start()
            # cmp byte ptr [rip+rel32], 0: 80 3D rel32 00 (7 bytes; rel32 counts from the next instruction)
            enc_va = (base + pos + 7 + struct.unpack_from("<i", code, pos + 2)[0]) & _M64
            anchored, loads = _scan_window(code, pos + 7, base, kdbg_va)
            if not anchored or len(loads) < 2:
                continue
            for a in loads:
                for b in loads:
                    if a == b:
                        continue
                    never, always = read(a, 8), read(b, 8)
                    if never is None or always is None:
                        continue
                    out.append(KdbgKeys(struct.unpack("<Q", never)[0], struct.unpack("<Q", always)[0], enc_va))
    return out
