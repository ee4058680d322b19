"""A minimal CAB writer for tests, written from the Microsoft Cabinet Format document (not from our reader):
CFHEADER (36 bytes), one CFFOLDER, CFFILE entries, CFDATA blocks of ≤ 32 KiB; MSZIP blocks are 'CK' + raw
deflate with the previous block as the dictionary. Other methods (LZX) pass their CFDATA payloads as ``blocks``."""

from __future__ import annotations

import struct
import zlib


def build_cab(
    files: list[tuple[str, bytes]],
    *,
    compression: int = 1,
    block: int = 0x8000,
    blocks: list[tuple[bytes, int]] | None = None,
) -> bytes:
    """``blocks``: ready (payload, uncompressed size) CFDATA bodies, e.g. from lzxwriter; else compressed here."""
    payload = b"".join(d for _, d in files)
    cfdata = [struct.pack("<IHH", 0, len(b), n) + b for b, n in blocks] if blocks is not None else []
    prev = b""
    for i in range(0, max(len(payload), 1) if blocks is None else 0, block):
        chunk = payload[i : i + block]
        if compression == 1:
            c = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=prev) if prev else zlib.compressobj(9, zlib.DEFLATED, -15)
            body = b"CK" + c.compress(chunk) + c.flush()
        else:
            body = chunk
        cfdata.append(struct.pack("<IHH", 0, len(body), len(chunk)) + body)
        prev = chunk
    names = [n.encode() + b"\0" for n, _ in files]
    coff_files = 36 + 8
    files_len = sum(16 + len(n) for n in names)
    data_start = coff_files + files_len
    cfiles = b""
    off = 0
    for (_, d), n in zip(files, names, strict=True):
        cfiles += struct.pack("<IIHHHH", len(d), off, 0, 0x5821, 0x6000, 0x20) + n
        off += len(d)
    data = b"".join(cfdata)
    total = data_start + len(data)
    header = struct.pack("<4sIIIIIBBHHHHH", b"MSCF", 0, total, 0, coff_files, 0, 3, 1, 1, len(files), 0, 0, 0)
    folder = struct.pack("<IHH", data_start, len(cfdata), compression)
    return header + folder + cfiles + data
