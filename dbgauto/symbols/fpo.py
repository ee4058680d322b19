"""x86 frame data from a PDB: the "new FPO" stream (FrameData records with program strings).

32-bit x86 code built without EBP frames can only be unwound with the compiler's description of each
function's frame: MSVC and clang (``-fomit-frame-pointer``, ``.cv_fpo_*``) emit FrameData records that lld
writes into the PDB stream named by the DBI optional debug header (slot 9, "new FPO"). Each record
(32 bytes: RvaStart, CodeSize, LocalSize, ParamsSize, MaxStackSize, FrameFunc, PrologSize, SavedRegsSize,
Flags) covers ``[RvaStart, RvaStart + CodeSize)``; FrameFunc is the offset of the record's program string
("$T0 .raSearch = $eip $T0 ^ = ...") in the ``/names`` string table, found through the PDB info stream's
named-stream map. A stream whose size is not a multiple of 32 starts with a 4-byte relocation pointer.
Layouts per the LLVM PDB documentation (DbiStream.rst, PdbStream.rst, StringTable.rst) and ``cvinfo.h``,
checked by the tests against ``llvm-pdbutil dump --fpo`` on PDBs clang + lld-link build.

Hostile input: every size is checked against the stream holding it, counts are bounded by the stream size
(never by a claimed count) and a program string is cut at :data:`MAX_PROGRAM`; damage raises
:class:`~dbgauto.errors.SymbolError` naming the file.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from dbgauto.errors import SymbolError
from dbgauto.symbols.pdb import PdbFile

__all__ = ["FrameData", "FrameDataTable", "frame_data_from_pdb", "load_frame_data"]

FRAME_DATA: Final = struct.Struct("<IIIIIIHHI")
NAMES_SIGNATURE: Final = 0xEFFEEFFE
NEW_FPO_SLOT: Final = 9  # index in the DBI optional debug header
MAX_PROGRAM: Final = 1024
MAX_ENTRIES: Final = 1 << 22
HAS_SEH, HAS_EH, IS_FUNCTION_START = 1, 2, 4


@dataclass(frozen=True, slots=True)
class FrameData:
    rva: int
    code_size: int
    locals_size: int
    params_size: int
    max_stack: int
    program: str | None
    prolog_size: int
    saved_regs_size: int
    flags: int

    @property
    def is_function_start(self) -> bool:
        return bool(self.flags & IS_FUNCTION_START)

    def contains(self, rva: int) -> bool:
        return self.rva <= rva < self.rva + self.code_size


class FrameDataTable:
    """FrameData records sorted by start; :meth:`lookup` finds the innermost record covering an RVA."""

    def __init__(self, entries: list[FrameData]) -> None:
        self.entries = sorted(entries, key=lambda e: (e.rva, -e.code_size))
        self._starts = [e.rva for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, rva: int, lookback: int = 16) -> FrameData | None:
        """The record with the greatest start ≤ ``rva`` whose range holds it (a few earlier ones are tried,
        since a function's prolog records nest inside its first record)."""
        i = bisect.bisect_right(self._starts, rva) - 1
        for j in range(i, max(i - lookback, -1), -1):
            if self.entries[j].contains(rva):
                return self.entries[j]
        return None


def _dbi_debug_header(pdb: PdbFile, dbi: bytes) -> tuple[int, int]:
    """(position, size) of the DBI optional debug header."""
    if len(dbi) < 64:
        raise pdb.fail("DBI stream truncated")
    mod, sc, smap, src, tsm, _mfc, dbg, ec = struct.unpack_from("<iiiiiIii", dbi, 24)
    sizes = (mod, sc, smap, src, tsm, ec, dbg)
    if any(s < 0 for s in sizes) or 64 + sum(sizes) > len(dbi):
        raise pdb.fail("DBI substreams do not fit the stream")
    return 64 + mod + sc + smap + src + tsm + ec, dbg


def _named_stream(pdb: PdbFile, name: str) -> int | None:
    """The stream index of ``name`` in the PDB info stream's named-stream map (a serialized hash table)."""
    info = pdb.stream(1)
    if len(info) < 32:
        raise pdb.fail("PDB info stream truncated")
    (buf_size,) = struct.unpack_from("<I", info, 28)
    names_at = 32
    pos = names_at + buf_size
    if pos + 8 > len(info):
        raise pdb.fail("PDB info stream: named-stream map truncated")
    size, _capacity = struct.unpack_from("<II", info, pos)
    pos += 8
    words: list[int] = []
    for what in ("present", "deleted"):
        if pos + 4 > len(info):
            raise pdb.fail(f"PDB info stream: {what} bit vector truncated")
        (n,) = struct.unpack_from("<I", info, pos)
        pos += 4
        if pos + 4 * n > len(info):
            raise pdb.fail(f"PDB info stream: {what} bit vector of {n} words does not fit")
        if what == "present":
            words = list(struct.unpack_from(f"<{n}I", info, pos))
        pos += 4 * n
    present = sum(bin(w).count("1") for w in words)
    if present != size or pos + 8 * present > len(info):
        raise pdb.fail("PDB info stream: named-stream map entries do not fit")
    for k in range(present):
        key, value = struct.unpack_from("<II", info, pos + 8 * k)
        if key < buf_size:
            raw = bytes(info[names_at + key : names_at + buf_size])
            if raw.split(b"\0", 1)[0].decode("utf-8", "replace") == name:
                return value
    return None


def _string_table(pdb: PdbFile) -> bytes | None:
    idx = _named_stream(pdb, "/names")
    if idx is None:
        return None
    raw = pdb.stream(idx)
    if len(raw) < 12:
        raise pdb.fail("/names stream truncated")
    sig, _ver, size = struct.unpack_from("<III", raw, 0)
    if sig != NAMES_SIGNATURE or 12 + size > len(raw):
        raise pdb.fail("/names stream has a bad signature or size")
    return bytes(raw[12 : 12 + size])


def frame_data_from_pdb(data: bytes, source: str = "<pdb>") -> FrameDataTable:
    """The new-FPO FrameData records of a PDB (an empty table when it has none)."""
    pdb = PdbFile(data, source)
    if pdb.stream_count < 4:
        raise pdb.fail(f"only {pdb.stream_count} streams (PDB info, TPI, DBI needed)")
    dbi = pdb.stream(3)
    pos, size = _dbi_debug_header(pdb, dbi)
    if size < 2 * (NEW_FPO_SLOT + 1):
        return FrameDataTable([])
    (stream,) = struct.unpack_from("<H", dbi, pos + 2 * NEW_FPO_SLOT)
    if stream == 0xFFFF:
        return FrameDataTable([])
    raw = pdb.stream(stream)
    start = 4 if len(raw) % FRAME_DATA.size else 0  # the optional relocation pointer
    count = min((len(raw) - start) // FRAME_DATA.size, MAX_ENTRIES)
    names = _string_table(pdb) if count else None
    entries = []
    for k in range(count):
        rva, code, loc, par, mx, func, prolog, saved, flags = FRAME_DATA.unpack_from(raw, start + k * FRAME_DATA.size)
        program = None
        if names is not None and func < len(names):
            text = names[func : func + MAX_PROGRAM].split(b"\0", 1)[0]
            program = text.decode("ascii", "replace")
        entries.append(FrameData(rva, code, loc, par, mx, program, prolog, saved, flags))
    return FrameDataTable(entries)


def load_frame_data(path: Path | str) -> FrameDataTable:
    """FrameData records of the PDB at ``path``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise SymbolError(str(p), f"cannot read: {e}") from None
    return frame_data_from_pdb(data, str(p))
