"""Microsoft cabinet (CAB) reader for the compressed files of a symbol store (``name.pd_``, ``name.sy_``).

symstore compresses with MSZIP: each CFDATA block is ``CK`` + raw deflate whose window is the previous
block's output; that and stored blocks are decoded here with ``zlib``. Microsoft's server mostly serves LZX
(window 2^15..2^21 in the compression type's high byte): the folder's CFDATA payloads are joined and decoded
by :mod:`dbgauto.symbols.lzx`, one 32 KiB frame per block. Quantum raises :class:`UnsupportedCompressionError`.
Structures (all little-endian) per the Microsoft Cabinet Format: CFHEADER, CFFOLDER[cFolders], CFFILE[cFiles]
at coffFiles, CFDATA blocks at each folder's coffCabStart. Every count and size is checked against the file and
the output limit before use; member names that could escape a directory (absolute, drive, ``..``) are refused.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PureWindowsPath

from dbgauto.errors import SymbolError, UnsupportedCompressionError
from dbgauto.symbols import lzx
from dbgauto.util.layout import Buffer

__all__ = ["CabMember", "extract_single", "is_cab", "read_cab"]

SIGNATURE = b"MSCF"
_HEADER = struct.Struct("<4sIIIIIBBHHHHH")  # CFHEADER fixed part, 36 bytes
_FOLDER = struct.Struct("<IHH")
_FILE = struct.Struct("<IIHHHH")
_DATA = struct.Struct("<IHH")
FLAG_PREV, FLAG_NEXT, FLAG_RESERVE = 1, 2, 4
COMP_NONE, COMP_MSZIP, COMP_QUANTUM, COMP_LZX = 0, 1, 2, 3
MAX_OUTPUT = 4 << 30  # a member larger than this is refused before any work
_MAX_BLOCK = 0x8000 + 12  # MSZIP: at most 32 KiB uncompressed per block
_LZX_MAX_INPUT = 0x8000 + 6144  # an LZX block holds one frame; libmspack's CAB_INPUTMAX bounds its payload


@dataclass(frozen=True, slots=True)
class CabMember:
    name: str
    size: int
    data: bytes


def is_cab(data: Buffer) -> bool:
    return bytes(data[:4]) == SIGNATURE


def _safe_name(raw: bytes, where: str) -> str:
    name = raw.decode("utf-8" if raw.isascii() else "latin-1")
    w = PureWindowsPath(name)
    if not name or w.drive or w.root or name.startswith(("/", "\\")) or ".." in w.parts or "\0" in name:
        raise SymbolError(where, f"cabinet member name {name!r} could escape the target directory")
    return name


def read_cab(data: Buffer, source: str = "<cab>", *, max_output: int = MAX_OUTPUT) -> list[CabMember]:
    """Every member of a single-cabinet CAB, decompressed."""
    mv = memoryview(data)
    size = len(mv)

    def bad(reason: str, offset: int | None = None) -> SymbolError:
        return SymbolError(source, f"cabinet: {reason}", offset=offset)

    if size < _HEADER.size or bytes(mv[:4]) != SIGNATURE:
        raise bad("not a cabinet (no MSCF signature)")
    (_, _, _cb_cabinet, _, coff_files, _, _minor, _major, n_folders, n_files, flags, _, _) = _HEADER.unpack_from(mv)
    if flags & (FLAG_PREV | FLAG_NEXT):
        raise bad("multi-cabinet sets are not supported")
    pos = _HEADER.size
    cb_folder_res = cb_data_res = 0
    if flags & FLAG_RESERVE:
        if pos + 4 > size:
            raise bad("truncated reserve header", pos)
        cb_header_res, cb_folder_res, cb_data_res = struct.unpack_from("<HBB", mv, pos)
        pos += 4 + cb_header_res
    if n_folders == 0 or pos + n_folders * (_FOLDER.size + cb_folder_res) > size:
        raise bad(f"{n_folders} folders do not fit in {size} bytes")
    folders = []
    for _ in range(n_folders):
        folders.append(_FOLDER.unpack_from(mv, pos))
        pos += _FOLDER.size + cb_folder_res
    if coff_files >= size or n_files == 0 or n_files * (_FILE.size + 2) > size - coff_files:
        raise bad(f"{n_files} file entries do not fit at {coff_files:#x}")
    files = []
    pos = coff_files
    for _ in range(n_files):
        if pos + _FILE.size > size:
            raise bad("truncated file entry", pos)
        cb_file, off_in_folder, i_folder, _, _, _ = _FILE.unpack_from(mv, pos)
        end = bytes(mv[pos + _FILE.size : pos + _FILE.size + 256]).find(b"\0")
        if end < 0:
            raise bad("unterminated member name", pos)
        name = _safe_name(bytes(mv[pos + _FILE.size : pos + _FILE.size + end]), source)
        pos += _FILE.size + end + 1
        if i_folder >= n_folders:
            raise bad(f"member {name!r} names folder {i_folder} of {n_folders}")
        if cb_file + off_in_folder > max_output:
            raise bad(f"member {name!r} claims {cb_file} bytes (limit {max_output})")
        files.append((name, cb_file, off_in_folder, i_folder))
    outputs = {}
    members = []
    for name, cb_file, off, i_folder in files:
        if i_folder not in outputs:
            need = max(o + c for _, c, o, f in files if f == i_folder)
            outputs[i_folder] = _folder_data(mv, folders[i_folder], cb_data_res, need, source)
        out = outputs[i_folder]
        if off + cb_file > len(out):
            raise bad(f"member {name!r} ends past its folder's data ({off + cb_file} > {len(out)})")
        members.append(CabMember(name, cb_file, bytes(out[off : off + cb_file])))
    return members


def _data_blocks(
    mv: memoryview, start: int, n_blocks: int, cb_data_res: int, bad: Callable[..., SymbolError]
) -> Iterator[tuple[int, int, int, memoryview]]:
    """The folder's CFDATA blocks as (index, offset of the payload, declared uncompressed size, payload), each
    header and payload checked against the file's end before it is yielded."""
    size = len(mv)
    if n_blocks * (_DATA.size + cb_data_res) > size:
        raise bad(f"{n_blocks} data blocks do not fit in the file")
    pos = start
    for i in range(n_blocks):
        if pos + _DATA.size + cb_data_res > size:
            raise bad(f"data block {i} truncated", pos)
        _csum, cb_data, cb_uncomp = _DATA.unpack_from(mv, pos)
        pos += _DATA.size + cb_data_res
        if pos + cb_data > size:
            raise bad(f"data block {i} needs {cb_data} bytes past the end", pos)
        yield i, pos, cb_uncomp, mv[pos : pos + cb_data]
        pos += cb_data


def _folder_data(mv: memoryview, folder: tuple[int, int, int], cb_data_res: int, need: int, source: str) -> bytearray:
    def bad(reason: str, offset: int | None = None) -> SymbolError:
        return SymbolError(source, f"cabinet: {reason}", offset=offset)

    start, n_blocks, comp = folder
    kind = comp & 0x0F
    if kind == COMP_QUANTUM:
        raise UnsupportedCompressionError(source, "cabinet: Quantum compression is not supported")
    if kind == COMP_LZX:
        return _lzx_folder(mv, folder, cb_data_res, need, source)
    if kind not in (COMP_NONE, COMP_MSZIP):
        raise bad(f"unknown compression type {comp:#x}")
    out = bytearray()
    window = b""
    for i, pos, cb_uncomp, block in _data_blocks(mv, start, n_blocks, cb_data_res, bad):
        if cb_uncomp > _MAX_BLOCK:
            raise bad(f"data block {i} claims {cb_uncomp} uncompressed bytes", pos)
        if kind == COMP_NONE:
            chunk = bytes(block)
        else:
            if bytes(block[:2]) != b"CK":
                raise bad(f"MSZIP block {i} lacks its CK signature", pos)
            try:
                d = zlib.decompressobj(-15, zdict=window) if window else zlib.decompressobj(-15)
                chunk = d.decompress(bytes(block[2:]), cb_uncomp)
            except zlib.error as e:
                raise bad(f"MSZIP block {i}: {e}", pos) from None
            window = chunk[-0x8000:]
        if len(chunk) != cb_uncomp:
            raise bad(f"data block {i} gives {len(chunk)} bytes, header says {cb_uncomp}")
        out += chunk
        if len(out) >= need:
            break
    return out


def _lzx_folder(mv: memoryview, folder: tuple[int, int, int], cb_data_res: int, need: int, source: str) -> bytearray:
    """Join the folder's CFDATA payloads (every block one 32 KiB frame, only the last shorter) and decode them."""

    def bad(reason: str, offset: int | None = None) -> SymbolError:
        return SymbolError(source, f"cabinet: {reason}", offset=offset)

    start, n_blocks, comp = folder
    window_bits = (comp >> 8) & 0x1F
    if not lzx.MIN_WINDOW_BITS <= window_bits <= lzx.MAX_WINDOW_BITS:
        raise bad(f"LZX window of 2^{window_bits} bytes (compression type {comp:#x}; allowed 2^15..2^21)")
    payloads: list[memoryview] = []
    out_size = 0
    for i, pos, cb_uncomp, block in _data_blocks(mv, start, n_blocks, cb_data_res, bad):
        if len(block) > _LZX_MAX_INPUT:
            raise bad(f"LZX data block {i} holds {len(block)} compressed bytes (limit {_LZX_MAX_INPUT})", pos)
        if cb_uncomp > lzx.FRAME_SIZE or (cb_uncomp < lzx.FRAME_SIZE and i != n_blocks - 1):
            raise bad(f"LZX data block {i} claims {cb_uncomp} bytes; each but the last holds {lzx.FRAME_SIZE}", pos)
        payloads.append(block)
        out_size += cb_uncomp
        if out_size >= need:
            break
    return lzx.decompress(b"".join(payloads), out_size, window_bits, source=source)


def extract_single(data: Buffer, source: str = "<cab>", *, max_output: int = MAX_OUTPUT) -> CabMember:
    """The one member of a symbol store's compressed file (more than one is an error)."""
    members = read_cab(data, source, max_output=max_output)
    if len(members) != 1:
        raise SymbolError(source, f"cabinet: {len(members)} members, expected one")
    return members[0]
