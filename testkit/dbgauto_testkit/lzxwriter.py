"""A small LZX encoder for cabinet folders, for tests; written from Microsoft's LZX description (Cabinet SDK)
with the corrections libmspack documents, and never importing dbgauto. Its cabinets are checked with Debian's
``cabextract`` (libmspack) in the tests, so the decoder under test is judged against an independent reader.

What it emits: the E8 header (and the forward E8 call translation when ``e8_filesize`` is given), blocks of
the requested types (1 verbatim, 2 aligned offset, 3 uncompressed) of ``block_size`` output bytes each, real
LZ77 matches (greedy, hash of 4 bytes, repeated offsets R0..R2 tried first, lengths 2..257), main/length/
aligned Huffman trees (length-limited, canonical), tree lengths delta-coded through pretrees with zero runs
(codes 17, 18) and same-value runs (19), 32 KiB frames realigned to 16 bits, and one CFDATA payload per frame.
"""

from __future__ import annotations

import bisect
import heapq
import random
import struct
from collections.abc import Sequence

from dbgauto_testkit.cabwriter import build_cab

FRAME = 0x8000
VERBATIM, ALIGNED, UNCOMPRESSED = 1, 2, 3
SLOTS = {15: 30, 16: 32, 17: 34, 18: 36, 19: 38, 20: 42, 21: 50}
EXTRA = [0 if i < 4 else min(i // 2 - 1, 17) for i in range(51)]
BASE = [sum(1 << EXTRA[j] for j in range(i)) for i in range(51)]
MAX_MATCH = 257


def e8_encode(data: bytes, filesize: int) -> bytes:
    """The encoder side of the E8 translation: relative call targets become absolute, frame by frame."""
    d = bytearray(data)
    for f, start in enumerate(range(0, len(d), FRAME)):
        size = min(FRAME, len(d) - start)
        if f >= 32768 or size <= 10:
            continue
        i, limit = start, start + size - 10
        while i < limit:
            if d[i] != 0xE8:
                i += 1
                continue
            rel = struct.unpack_from("<i", d, i + 1)[0]
            if -i <= rel < filesize:
                absolute = rel + i if rel < filesize - i else rel - filesize
                struct.pack_into("<I", d, i + 1, absolute & 0xFFFFFFFF)
            i += 5
    return bytes(d)


def huffman_lengths(freqs: Sequence[int], limit: int) -> list[int]:
    """Code lengths of a complete prefix code over the used symbols (at least two), none longer than ``limit``."""
    freqs = list(freqs)
    used = [i for i, f in enumerate(freqs) if f]
    if not used:
        return [0] * len(freqs)
    if len(used) == 1:
        freqs[1 if used[0] == 0 else 0] = 1
    while True:
        heap = [(f, i, [i]) for i, f in enumerate(freqs) if f]
        heapq.heapify(heap)
        lens = [0] * len(freqs)
        tie = len(freqs)
        while len(heap) > 1:
            fa, _, a = heapq.heappop(heap)
            fb, _, b = heapq.heappop(heap)
            for s in a + b:
                lens[s] += 1
            heapq.heappush(heap, (fa + fb, tie, a + b))
            tie += 1
        if max(lens) <= limit:
            return lens
        freqs = [max(1, f >> 1) if f else 0 for f in freqs]


def canonical_codes(lens: Sequence[int]) -> list[int]:
    codes = [0] * len(lens)
    code = prev = 0
    for ln, s in sorted((ln, s) for s, ln in enumerate(lens) if ln):
        code <<= ln - prev
        codes[s] = code
        code += 1
        prev = ln
    return codes


class BitWriter:
    """MSB-first bits packed into 16-bit little-endian words; ``out`` also takes raw bytes when aligned."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, count: int) -> None:
        self.acc = (self.acc << count) | value
        self.n += count
        while self.n >= 16:
            self.n -= 16
            w = (self.acc >> self.n) & 0xFFFF
            self.out += bytes((w & 0xFF, w >> 8))
        self.acc &= (1 << self.n) - 1

    def align(self) -> None:
        if self.n:
            self.put(0, 16 - self.n)


def _pretree_tokens(prev: Sequence[int], new: Sequence[int]) -> list[tuple[int, int, int]]:
    """(pretree symbol, extra bits value, extra bit count) for one section; 19 is followed by a delta token."""
    toks: list[tuple[int, int, int]] = []
    x, n = 0, len(new)
    while x < n:
        run = 1
        while x + run < n and new[x + run] == new[x]:
            run += 1
        if new[x] == 0 and run >= 20:
            k = min(run, 51)
            toks.append((18, k - 20, 5))
            x += k
        elif new[x] == 0 and run >= 4:
            k = min(run, 19)
            toks.append((17, k - 4, 4))
            x += k
        elif run >= 4:
            k = min(run, 5)
            toks.append((19, k - 4, 1))
            toks.append(((prev[x] - new[x]) % 17, 0, 0))
            x += k
        else:
            toks.append(((prev[x] - new[x]) % 17, 0, 0))
            x += 1
    return toks


def write_lens(w: BitWriter, prev: list[int], new: list[int], first: int, last: int) -> None:
    toks = _pretree_tokens(prev[first:last], new[first:last])
    freqs = [0] * 20
    for s, _, _ in toks:
        freqs[s] += 1
    plens = huffman_lengths(freqs, 15)
    pcodes = canonical_codes(plens)
    for ln in plens:
        w.put(ln, 4)
    for s, v, k in toks:
        w.put(pcodes[s], plens[s])
        if k:
            w.put(v, k)
    prev[first:last] = new[first:last]


def _match_len(d: bytes, a: int, b: int, most: int) -> int:
    n = 0
    while n < most:
        k = min(32, most - n)
        if d[a + n : a + n + k] == d[b + n : b + n + k]:
            n += k
            continue
        while n < most and d[a + n] == d[b + n]:
            n += 1
        break
    return n


def compress(
    data: bytes,
    window_bits: int = 21,
    *,
    e8_filesize: int = 0,
    block_types: Sequence[int] = (VERBATIM,),
    block_size: int = 3 * FRAME,
) -> list[tuple[bytes, int]]:
    """LZX-compress ``data`` as one cabinet folder: one (CFDATA payload, uncompressed size) per 32 KiB frame."""
    assert window_bits in SLOTS
    assert 1 <= block_size < 1 << 24
    total = len(data)
    d = e8_encode(data, e8_filesize) if e8_filesize else data
    n_main = 256 + 8 * SLOTS[window_bits]
    max_off = (1 << window_bits) - 3
    w = BitWriter()
    if e8_filesize:
        w.put(1, 1)
        w.put(e8_filesize >> 16, 16)
        w.put(e8_filesize & 0xFFFF, 16)
    else:
        w.put(0, 1)
    prev_main, prev_len = [0] * n_main, [0] * 249
    reps = [1, 1, 1]
    heads: dict[bytes, int] = {}
    splits: list[int] = []

    def frame_edge(pos: int) -> None:
        if pos % FRAME == 0 and pos < total:
            w.align()
            splits.append(len(w.out))

    pos = 0
    for bi, bstart in enumerate(range(0, total, block_size)):
        bend = min(bstart + block_size, total)
        btype = block_types[bi % len(block_types)]
        w.put(btype, 3)
        w.put((bend - bstart) >> 8, 16)
        w.put((bend - bstart) & 0xFF, 8)
        if btype == UNCOMPRESSED:
            if w.n == 0:
                w.put(0, 16)
            w.align()
            w.out += struct.pack("<III", *reps)
            while pos < bend:
                nxt = min(bend, (pos // FRAME + 1) * FRAME)
                w.out += d[pos:nxt]
                for i in range(pos, nxt):
                    heads[d[i : i + 4]] = i
                pos = nxt
                if pos == bend and (bend - bstart) & 1:
                    w.out.append(0)
                frame_edge(pos)
            continue
        # LZ77 parse of the block, frame by frame (no match crosses a frame or block end)
        toks: list[tuple[int, int, int, int]] = []  # (main symbol, length symbol or -1, footer, extra bits)
        main_f, len_f, al_f = [0] * n_main, [0] * 249, [0] * 8
        p = pos
        while p < bend:
            seg_end = min(bend, (p // FRAME + 1) * FRAME)
            while p < seg_end:
                most = min(MAX_MATCH, seg_end - p)
                best_len, best_off = 0, 0
                if most >= 2:
                    for r in reps:
                        if r <= p and r <= max_off and d[p - r] == d[p] and d[p - r + 1] == d[p + 1]:
                            n = _match_len(d, p, p - r, most)
                            if n > best_len:
                                best_len, best_off = n, r
                    key = d[p : p + 4]
                    c = heads.get(key)
                    if c is not None and p - c <= max_off and most >= 4:
                        n = _match_len(d, p, c, most)
                        if n > best_len + 1:
                            best_len, best_off = n, p - c
                    heads[key] = p
                if best_len < 3 and not (best_len == 2 and best_off in reps):
                    toks.append((d[p], -1, 0, 0))
                    main_f[d[p]] += 1
                    p += 1
                    continue
                if best_off == reps[0]:
                    slot = 0
                elif best_off == reps[1]:
                    slot = 1
                    reps[0], reps[1] = reps[1], reps[0]
                elif best_off == reps[2]:
                    slot = 2
                    reps[0], reps[2] = reps[2], reps[0]
                else:
                    f = best_off + 2
                    slot = bisect.bisect_right(BASE, f) - 1
                    reps[2], reps[1], reps[0] = reps[1], reps[0], best_off
                header = min(best_len - 2, 7)
                sym = 256 + slot * 8 + header
                lsym = best_len - 2 - 7 if header == 7 else -1
                footer = (best_off + 2 - BASE[slot]) if slot >= 3 else 0
                extra = EXTRA[slot] if slot >= 3 else 0
                toks.append((sym, lsym, footer, extra))
                main_f[sym] += 1
                if lsym >= 0:
                    len_f[lsym] += 1
                if btype == ALIGNED and extra >= 3:
                    al_f[footer & 7] += 1
                for i in range(p + 1, min(p + best_len, p + 64)):
                    heads[d[i : i + 4]] = i
                p += best_len
        # trees, then the symbols
        if btype == ALIGNED:
            al_lens = huffman_lengths([f + 1 for f in al_f], 7)
            al_codes = canonical_codes(al_lens)
            for ln in al_lens:
                w.put(ln, 3)
        main_lens = huffman_lengths(main_f, 16)
        len_lens = huffman_lengths(len_f, 16)
        write_lens(w, prev_main, main_lens, 0, 256)
        write_lens(w, prev_main, main_lens, 256, n_main)
        write_lens(w, prev_len, len_lens, 0, 249)
        main_codes, len_codes = canonical_codes(main_lens), canonical_codes(len_lens)
        for sym, lsym, footer, extra in toks:
            w.put(main_codes[sym], main_lens[sym])
            if sym < 256:
                pos += 1
                frame_edge(pos)
                continue
            if lsym >= 0:
                w.put(len_codes[lsym], len_lens[lsym])
            if btype == ALIGNED and extra >= 3:
                if extra > 3:
                    w.put(footer >> 3, extra - 3)
                w.put(al_codes[footer & 7], al_lens[footer & 7])
            elif extra:
                w.put(footer, extra)
            pos += ((sym - 256) & 7) + 2 + max(lsym, 0)
            frame_edge(pos)
    w.align()
    bounds = [0, *splits, len(w.out)]
    sizes = [min(FRAME, total - i) for i in range(0, total, FRAME)]
    assert len(sizes) == len(bounds) - 1
    return [(bytes(w.out[a:b]), n) for a, b, n in zip(bounds[:-1], bounds[1:], sizes, strict=True)]


def build_lzx_cab(
    name: str,
    data: bytes,
    window_bits: int = 21,
    *,
    e8_filesize: int = 0,
    block_types: Sequence[int] = (VERBATIM,),
    block_size: int = 3 * FRAME,
) -> bytes:
    """A single-member cabinet whose folder is LZX-compressed (typeCompress = 3 | window_bits << 8)."""
    blocks = compress(data, window_bits, e8_filesize=e8_filesize, block_types=block_types, block_size=block_size)
    return build_cab([(name, data)], compression=3 | (window_bits << 8), blocks=blocks)


def pdb_like(size: int, seed: int = 7) -> bytes:
    """Bytes shaped like a PDB: 4 KiB MSF pages of symbol records (names, RVAs), type records, GUIDs, zeros."""
    rng = random.Random(seed)
    stems = ["Nt", "Zw", "Ke", "Ki", "Io", "Ex", "Mm", "Ob", "Ps", "Rtl", "Se", "Cm", "Hal", "Wmi", "Etw", "Po"]
    words = ["Create", "Open", "Query", "Set", "Information", "Process", "Thread", "Object", "Dispatch", "Exception"]
    words += ["Allocate", "Pool", "Lock", "Release", "Wait", "Timer", "Section", "File", "Key", "Value", "Table"]
    out = bytearray()
    rva = 0x1000
    while len(out) < size:
        page = bytearray()
        kind = rng.random()
        while len(page) < 4096 - 64:
            if kind < 0.6:  # S_PUB32-like records
                name = (rng.choice(stems) + "".join(rng.choice(words) for _ in range(rng.randint(1, 3)))).encode()
                rva += rng.randint(16, 600)
                rec = struct.pack("<HHIIH", len(name) + 12, 0x110E, rng.choice((0, 2)), rva, 1) + name + b"\0"
                page += rec + b"\0" * (-len(rec) % 4)
            elif kind < 0.85:  # LF_MEMBER-like type records
                page += struct.pack("<HHHIH", 0x150D, 3, rng.randint(0x1000, 0x1400), rng.randint(0, 0x800), 0x8000)
                page += ("m_" + rng.choice(words)).encode() + b"\0\xf2\xf1"
            else:
                page += rng.randbytes(16) + b"\0" * rng.randint(0, 48)
        out += page[:4096].ljust(4096, b"\0")
    return bytes(out[:size])
