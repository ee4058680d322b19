"""LZX decompression of a cabinet folder (CAB compression type 3), for the ``name.pd_`` files of symbol servers.

Written from Microsoft's LZX description (Cabinet SDK, LZX DELTA in [MS-PATCH]) with the corrections that
libmspack documents and that cabextract, the peer reader of the tests, applies:

* the bitstream is 16-bit little-endian words read most-significant bit first; the stream opens with the
  E8 header (1 bit, then a 32-bit ``intel_filesize`` as two 16-bit halves when set);
* blocks: 3-bit type (1 verbatim, 2 aligned offset, 3 uncompressed), 24-bit output length; an aligned block
  starts with eight 3-bit aligned-tree lengths; verbatim and aligned blocks then carry the main tree (symbols
  0..255, then 256..256+8*slots) and the length tree (249 symbols, may be empty), each section preceded by
  its own 20-symbol pretree and delta-coded against the previous block's lengths (codes 17/18 are zero runs,
  19 a run of one delta); an uncompressed block aligns to 16 bits (1..16 padding bits), stores R0..R2 as
  three little-endian dwords, then the bytes, then a pad byte when the length is odd;
* output is made in 32 KiB frames (the folder's last one shorter); after each frame the bitstream realigns to
  16 bits, and no match may cross a frame or block end;
* matches: repeated offsets R0..R2 (all 1 at the start, slots 0..2), position slots with
  ``extra_bits``/``position_base``; in aligned blocks the low 3 bits of offsets with >= 3 extra bits come from
  the aligned tree;
* E8 translation, applied per frame when ``intel_filesize`` is non-zero to the first 32768 frames: an E8 byte
  at output position ``curpos`` followed by an absolute ``abs`` (-curpos <= abs < filesize) becomes the
  relative ``abs - curpos`` (or ``abs + filesize`` for negative ``abs``); the last 10 bytes of a frame are
  never scanned, and the four bytes after an E8 are skipped.

Speed: Huffman codes are decoded with one flat lookup table per tree (index = the next ``maxlen`` bits),
bits come from a byte-swapped copy of the input read 64 at a time, and matches are copied with slices.
Bounds: the output never exceeds ``out_size`` (the caller derives it from the cabinet's declared, capped
sizes); every symbol consumes at least one bit, reading past the end yields zero bits and is refused at the
next frame or block edge, so hostile input ends in a :class:`SymbolError` after bounded work.
"""

from __future__ import annotations

import struct

from dbgauto.errors import SymbolError
from dbgauto.util.layout import Buffer

__all__ = ["FRAME_SIZE", "MAX_WINDOW_BITS", "MIN_WINDOW_BITS", "decompress", "position_slots"]

FRAME_SIZE = 0x8000
MIN_WINDOW_BITS, MAX_WINDOW_BITS = 15, 21
VERBATIM, ALIGNED, UNCOMPRESSED = 1, 2, 3
_NUM_CHARS = 256
_PRETREE_SYMS, _LENGTH_SYMS, _ALIGNED_SYMS = 20, 249, 8
_MAX_CODE = 16
_SAFETY = 64  # a run of tree lengths may overrun its section by this much (libmspack's LENTABLE_SAFETY)
_SLOTS = {15: 30, 16: 32, 17: 34, 18: 36, 19: 38, 20: 42, 21: 50}
_EXTRA = tuple(0 if i < 4 else min(i // 2 - 1, 17) for i in range(51))
_BASE = tuple(sum(1 << _EXTRA[j] for j in range(i)) for i in range(51))
_E8_FRAMES = 32768  # translation stops after this many frames (1 GiB)
_I32 = struct.Struct("<i")
_R = struct.Struct("<III")
_MASKS = [(1 << n) - 1 for n in range(64)]


def position_slots(window_bits: int) -> int:
    """Number of position slots of a window (the 1 MiB and 2 MiB windows have 42 and 50, not 40 and 42)."""
    return _SLOTS[window_bits]


class _Bits:
    """MSB-first reader over the byte-swapped stream; ``o`` is the next byte to load, ``nb`` the bits held."""

    __slots__ = ("buf", "end", "nb", "o", "raw", "sw")

    def __init__(self, data: bytes) -> None:
        if len(data) & 1:
            data += b"\0"
        self.end = len(data)
        sw = bytearray(len(data))
        sw[0::2] = data[1::2]
        sw[1::2] = data[0::2]
        self.sw = bytes(sw) + b"\0" * 8
        self.raw = data
        self.buf = self.nb = self.o = 0

    def pos(self) -> int:
        return self.o * 8 - self.nb

    def bits(self, n: int) -> int:
        while self.nb < n:
            self.buf = ((self.buf & ((1 << self.nb) - 1)) << 32) | int.from_bytes(self.sw[self.o : self.o + 4], "big")
            self.o += 4
            self.nb += 32
        self.nb -= n
        return (self.buf >> self.nb) & ((1 << n) - 1)

    def sym(self, table: list[int], width: int) -> int:
        if self.nb < width:
            self._fill()
        e = table[(self.buf >> (self.nb - width)) & ((1 << width) - 1)]
        self.nb -= e & 31
        return e >> 5

    def _fill(self) -> None:
        self.buf = ((self.buf & ((1 << self.nb) - 1)) << 32) | int.from_bytes(self.sw[self.o : self.o + 4], "big")
        self.o += 4
        self.nb += 32

    def seek_bit(self, p: int) -> None:
        """Continue at bit ``p`` (a multiple of 16)."""
        self.o, self.nb, self.buf = p >> 3, 0, 0


class _Decoder:
    def __init__(self, data: bytes, out_size: int, window_bits: int, source: str) -> None:
        self.r = _Bits(data)
        self.out_size = out_size
        self.window = 1 << window_bits
        self.n_main = _NUM_CHARS + 8 * _SLOTS[window_bits]
        self.source = source
        self.main_lens = [0] * (self.n_main + _SAFETY)
        self.len_lens = [0] * (_LENGTH_SYMS + _SAFETY)
        self.frame = 0

    def fail(self, reason: str) -> SymbolError:
        return SymbolError(self.source, f"LZX: {reason} (frame {self.frame}, input bit {self.r.pos()})")

    def check_input(self) -> None:
        # libmspack supplies two zero bytes past the end of the input; anything further is truncation
        if self.r.pos() > (self.r.end + 2) * 8:
            raise self.fail("compressed data ends early (truncated)")

    def table(self, lens: list[int], n: int, what: str) -> tuple[list[int], int] | None:
        """Flat decode table of a canonical code (entries ``symbol << 5 | length``); None when every length is 0."""
        order = sorted((ln, s) for s, ln in enumerate(lens[:n]) if ln)
        if not order:
            return None
        width = order[-1][0]
        if width > _MAX_CODE:
            raise self.fail(f"{what} tree has a code of {width} bits")
        size = 1 << width
        table = [0] * size
        at = 0
        for ln, s in order:
            span = 1 << (width - ln)
            if at + span > size:
                raise self.fail(f"{what} tree is over-subscribed")
            table[at : at + span] = [s << 5 | ln] * span
            at += span
        if at != size:
            raise self.fail(f"{what} tree is incomplete")
        return table, width

    def read_lens(self, lens: list[int], first: int, last: int) -> None:
        r = self.r
        pre = [r.bits(4) for _ in range(_PRETREE_SYMS)]
        built = self.table(pre, _PRETREE_SYMS, "pretree")
        if built is None:
            raise self.fail("pretree has no codes")
        ptab, pw = built
        x, limit = first, len(lens)
        while x < last:
            z = r.sym(ptab, pw)
            if z < 17:
                lens[x] = (lens[x] - z) % 17
                x += 1
                continue
            if z == 17:
                run, value = r.bits(4) + 4, 0
            elif z == 18:
                run, value = r.bits(5) + 20, 0
            else:
                run = r.bits(1) + 4
                d = r.sym(ptab, pw)
                if d > 16:
                    raise self.fail(f"tree-length run repeats the pretree code {d}")
                value = (lens[x] - d) % 17
            if x + run > limit:
                raise self.fail("tree-length run past the end of its tree")
            lens[x : x + run] = [value] * run
            x += run

    def run(self) -> bytearray:
        r = self.r
        out = bytearray()
        out_size = self.out_size
        r0 = r1 = r2 = 1
        block_type = 0
        block_len = block_left = 0
        mtab: list[int] = []
        mw = 0
        ltab: list[int] | None = None
        lw = 0
        atab: list[int] = []
        aw = 0
        intel = 0
        if out_size and r.bits(1):
            hi = r.bits(16)
            intel = _I32.unpack(((hi << 16) | r.bits(16)).to_bytes(4, "little"))[0]
        window = self.window
        extra_t, base_t = _EXTRA, _BASE
        frm = int.from_bytes
        masks = _MASKS
        pos = 0
        while pos < out_size:
            frame_end = min(pos + FRAME_SIZE, out_size)
            while pos < frame_end:
                if block_left == 0:
                    if block_type == UNCOMPRESSED and block_len & 1:
                        r.o += 1
                    self.check_input()
                    block_type = r.bits(3)
                    block_len = block_left = (r.bits(16) << 8) | r.bits(8)
                    if block_type == ALIGNED:
                        built = self.table([r.bits(3) for _ in range(_ALIGNED_SYMS)], _ALIGNED_SYMS, "aligned")
                        if built is None:
                            raise self.fail("aligned tree has no codes")
                        atab, aw = built
                    if block_type in (VERBATIM, ALIGNED):
                        self.read_lens(self.main_lens, 0, _NUM_CHARS)
                        self.read_lens(self.main_lens, _NUM_CHARS, self.n_main)
                        built = self.table(self.main_lens, self.n_main, "main")
                        if built is None:
                            raise self.fail("main tree has no codes")
                        mtab, mw = built
                        self.read_lens(self.len_lens, 0, _LENGTH_SYMS)
                        lbuilt = self.table(self.len_lens, _LENGTH_SYMS, "length")
                        ltab, lw = lbuilt if lbuilt is not None else (None, 0)
                    elif block_type == UNCOMPRESSED:
                        p = r.pos()
                        r.seek_bit((p | 15) + 1)  # 1..16 padding bits
                        if r.o + 12 > r.end:
                            raise self.fail("uncompressed block header truncated")
                        r0, r1, r2 = _R.unpack_from(r.raw, r.o)
                        r.o += 12
                    else:
                        raise self.fail(f"unknown block type {block_type}")
                    self.check_input()
                n = min(block_left, frame_end - pos)
                block_left -= n
                stop = pos + n
                if block_type == UNCOMPRESSED:
                    if r.o + n > r.end:
                        raise self.fail("uncompressed block runs past the end of the data")
                    out += r.raw[r.o : r.o + n]
                    r.o += n
                    pos = stop
                    continue
                aligned = block_type == ALIGNED
                sw = r.sw
                buf, nb, o = r.buf, r.nb, r.o
                mmask = (1 << mw) - 1
                lmask = (1 << lw) - 1
                amask = (1 << aw) - 1
                while pos < stop:
                    if nb < 32:
                        buf = ((buf & masks[nb]) << 64) | frm(sw[o : o + 8], "big")
                        o += 8
                        nb += 64
                    e = mtab[(buf >> (nb - mw)) & mmask]
                    nb -= e & 31
                    s = e >> 5
                    if s < 256:
                        out.append(s)
                        pos += 1
                        continue
                    s -= 256
                    length = s & 7
                    if length == 7:
                        if ltab is None:
                            r.buf, r.nb, r.o = buf, nb, o
                            raise self.fail("a match needs the length tree, which is empty")
                        e = ltab[(buf >> (nb - lw)) & lmask]
                        nb -= e & 31
                        length += e >> 5
                    length += 2
                    slot = s >> 3
                    if slot == 0:
                        off = r0
                    elif slot == 1:
                        off = r1
                        r1 = r0
                        r0 = off
                    elif slot == 2:
                        off = r2
                        r2 = r0
                        r0 = off
                    else:
                        if nb < 32:
                            buf = ((buf & masks[nb]) << 64) | frm(sw[o : o + 8], "big")
                            o += 8
                            nb += 64
                        extra = extra_t[slot]
                        off = base_t[slot] - 2
                        if aligned and extra >= 3:
                            if extra > 3:
                                nb -= extra - 3
                                off += ((buf >> nb) & ((1 << (extra - 3)) - 1)) << 3
                            e = atab[(buf >> (nb - aw)) & amask]
                            nb -= e & 31
                            off += e >> 5
                        elif extra:
                            nb -= extra
                            off += (buf >> nb) & ((1 << extra) - 1)
                        r2 = r1
                        r1 = r0
                        r0 = off
                    end = pos + length
                    if end > stop or off > pos or off > window or off <= 0:
                        r.buf, r.nb, r.o = buf, nb, o
                        if end > stop:
                            edge = "frame" if stop == frame_end else "block"
                            raise self.fail(f"match of {length} bytes at {pos} crosses the {edge} end at {stop}")
                        raise self.fail(f"match offset {off} at output {pos} reaches before the data or window")
                    start = pos - off
                    if off >= length:
                        out += out[start : end - off]
                    elif off == 1:
                        out += out[start:pos] * length
                    else:
                        out += (out[start:pos] * (length // off + 1))[:length]
                    pos = end
                r.buf, r.nb, r.o = buf, nb, o
            # realign to 16 bits at the end of every frame (nothing to do after uncompressed bytes)
            if r.nb:
                p = r.pos()
                r.seek_bit((p + 15) & ~15)
            self.check_input()
            self.frame += 1
        if intel:
            _e8_decode(out, intel)
        return out


def _e8_decode(out: bytearray, filesize: int) -> None:
    """Undo the encoder's E8 call translation, frame by frame, in place."""
    i32 = _I32
    for f, start in enumerate(range(0, len(out), FRAME_SIZE)):
        if f >= _E8_FRAMES:
            break
        size = min(FRAME_SIZE, len(out) - start)
        if size <= 10:
            continue
        limit = start + size - 10
        i = out.find(0xE8, start, limit)
        while i >= 0:
            curpos = i
            absolute = i32.unpack_from(out, i + 1)[0]
            if -curpos <= absolute < filesize:
                rel = absolute - curpos if absolute >= 0 else absolute + filesize
                out[i + 1 : i + 5] = (rel & 0xFFFFFFFF).to_bytes(4, "little")
            i = out.find(0xE8, i + 5, limit) if i + 5 < limit else -1


def decompress(data: Buffer, out_size: int, window_bits: int, *, source: str = "<lzx>") -> bytearray:
    """Decode one folder's LZX stream (its CFDATA payloads joined) into exactly ``out_size`` bytes.

    ``out_size`` must come from bounded, declared sizes (the cabinet's CFDATA ``cbUncomp`` values); the
    output frames are 32 KiB each, the last one shorter."""
    if not MIN_WINDOW_BITS <= window_bits <= MAX_WINDOW_BITS:
        raise SymbolError(source, f"LZX: window of 2^{window_bits} bytes (allowed 2^15..2^21)")
    if out_size < 0:
        raise SymbolError(source, f"LZX: negative output size {out_size}")
    dec = _Decoder(bytes(data), out_size, window_bits, source)
    try:
        out = dec.run()
    except (IndexError, ValueError, struct.error) as e:  # defensive: any slip in a check becomes typed
        raise dec.fail(f"malformed stream ({e})") from None
    if len(out) != out_size:
        raise dec.fail(f"produced {len(out)} bytes, expected {out_size}")
    return out
