"""Symbol-store keys and local stores (the directory layout symstore, WinDbg and symchk share).

Keys: a PDB is ``name.pdb/<GUID><age>/name.pdb`` (GUID as 32 upper-case hex digits, age in hex without
leading zeros); an image is ``name.sys/<TIMESTAMP><SIZEOFIMAGE>/name.sys`` (``%08X`` then ``%x``). A store
may hold the file itself, its CAB-compressed twin (last character ``_``: ``name.pd_``) or a ``file.ptr``
whose text ``PATH:<location>`` points elsewhere. Names come from dumps and are untrusted: a name that is
not one plain file name raises :class:`SymbolError` before any path is built from it.

Writes are atomic (temporary file + rename, :mod:`dbgauto.util.atomic`), so several batch workers may
store the same file at once: the last rename wins and every reader sees a whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from dbgauto.errors import SymbolError
from dbgauto.symbols.cab import extract_single, is_cab
from dbgauto.util.atomic import atomic_write_bytes

__all__ = ["LocalStore", "SymbolKey", "image_key", "make_key", "pdb_key"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.$~+\-]{1,200}$")
MAX_PTR_BYTES = 4096


@dataclass(frozen=True, slots=True)
class SymbolKey:
    """One file in a symbol store: its name and index directory (``<GUID><age>`` or ``<TIMESTAMP><SIZE>``)."""

    name: str
    index: str

    @property
    def path(self) -> str:
        return f"{self.name}/{self.index}/{self.name}"

    @property
    def compressed_path(self) -> str:
        return f"{self.name}/{self.index}/{self.name[:-1]}_"

    @property
    def pointer_path(self) -> str:
        return f"{self.name}/{self.index}/file.ptr"

    def __str__(self) -> str:
        return self.path


def _check_name(name: str) -> str:
    if not _SAFE_NAME.match(name) or name in (".", "..") or name.startswith(".."):
        raise SymbolError(None, f"symbol file name {name!r} is not a plain file name")
    return name


def pdb_key(name: str, guid: str, age: int) -> SymbolKey:
    """The store key of a PDB named by an RSDS record (``guid`` with or without dashes/braces)."""
    g = guid.strip("{}").replace("-", "").upper()
    if not re.fullmatch(r"[0-9A-F]{32}", g) or not 0 <= age < 1 << 32:
        raise SymbolError(None, f"PDB id {guid!r}/{age!r} is not a GUID and a 32-bit age")
    return SymbolKey(_check_name(PureWindowsPath(name).name or name), f"{g}{age:X}")


def image_key(name: str, timestamp: int, size_of_image: int) -> SymbolKey:
    """The store key of an image by its PE TimeDateStamp and SizeOfImage (what a driver list gives)."""
    if not 0 <= timestamp < 1 << 32 or not 0 < size_of_image < 1 << 32:
        raise SymbolError(None, f"image id {timestamp!r}/{size_of_image!r} out of range")
    return SymbolKey(_check_name(PureWindowsPath(name).name or name), f"{timestamp:08X}{size_of_image:x}")


def make_key(name: str, index: str) -> SymbolKey:
    """A key from its two parts as a manifest or a store listing gives them (both checked)."""
    if not re.fullmatch(r"[0-9A-Fa-f]{1,80}", index):
        raise SymbolError(None, f"symbol index {index!r} is not hexadecimal")
    return SymbolKey(_check_name(name), index)


def parse_file_ptr(text: bytes, source: str) -> str | None:
    """The location a ``file.ptr`` names (``PATH:...``); None for ``MSG:`` (the server's "not here")."""
    s = text[:MAX_PTR_BYTES].decode("utf-8", "replace").strip()
    if s.upper().startswith("PATH:"):
        return s[5:].strip() or None
    if s.upper().startswith("MSG:"):
        return None
    raise SymbolError(source, f"file.ptr holds neither PATH: nor MSG: ({s[:60]!r})")


class LocalStore:
    """A directory in symbol-store layout (``flat``: also plain files directly in it)."""

    def __init__(self, root: Path | str, *, flat: bool = False) -> None:
        self.root = Path(root)
        self.flat = flat

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path_for(self, key: SymbolKey) -> Path:
        return self.root / key.name / key.index / key.name

    def get(self, key: SymbolKey) -> Path | None:
        """The file if this store has it (decompressing a ``_`` twin into place); None if not."""
        target = self.path_for(key)
        if target.is_file():
            return target
        packed = self.root / key.compressed_path
        if packed.is_file():
            return self.put(key, self.unpack(packed.read_bytes(), str(packed), key))
        ptr = self.root / key.pointer_path
        if ptr.is_file():
            where = parse_file_ptr(ptr.read_bytes(), str(ptr))
            if where is not None:
                p = Path(where)
                if p.is_file() and not PureWindowsPath(where).drive:
                    return p
        if self.flat:
            for cand in (self.root / key.name, self.root / key.name.rsplit(".", 1)[-1] / key.name):
                if cand.is_file():
                    return cand
        return None

    @staticmethod
    def unpack(data: bytes, source: str, key: SymbolKey) -> bytes:
        """A compressed store file's content (a CAB holding one member named like the key)."""
        if not is_cab(data):
            raise SymbolError(source, "compressed symbol file is not a cabinet")
        member = extract_single(data, source)
        if member.name.lower() != key.name.lower():
            raise SymbolError(source, f"cabinet holds {member.name!r}, expected {key.name!r}")
        return member.data

    def put(self, key: SymbolKey, data: bytes) -> Path:
        """Store ``data`` under ``key`` atomically (concurrent writers of the same file are safe)."""
        return atomic_write_bytes(self.path_for(key), data, overwrite=True)
