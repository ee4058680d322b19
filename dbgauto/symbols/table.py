"""One module's symbols in a compact form: sorted RVAs for address→name, names, sizes and kinds, and types.

Every source (ISF table, PDB) is converted once into a :class:`SymbolTable` and cached as a small binary file
(no pickle: a cache directory may be shared, and unpickling runs code). File layout, little-endian::

    b"DBGSYMT1"  u32 meta_len  meta (JSON: identity, counts, section lengths)
    u32[n] rva (sorted)  u32[n] size (0: unknown)  u8[n] kind (0 unknown, 1 function, 2 data)
    names (UTF-8, NUL-separated, in rva order)   types (JSON, parsed only when a type is first asked for)

Loading costs one read, two ``array.frombytes`` and one ``split``: milliseconds for a kernel's 40,000 names.

Naming code addresses (``function_at``): when the source knows kinds and sizes (a PDB), an address is named
only inside a function's extent. When it does not (ISF tables list publics, functions and data alike,
without sizes), the nearest preceding symbol is used unless its name is one the compiler gives only to
data (string literals ``??_C@``, vftables ``??_7``, RTTI ``??_R``, import thunks ``__imp_``) and the
offset stays below ``max_offset``; kernel data lives in separate sections, so inside ``.text`` the nearest
preceding symbol is a function or a label in one. Such a table cannot tell an address inside a data
variable from code by itself: callers pass the image's executable section ranges (``code_ranges``) when
its header is known, and otherwise use it only for values that are code (return addresses, RIP).
``SymbolHit.exact`` says which rule named it.
"""

from __future__ import annotations

import bisect
import fnmatch
import json
import re
import struct
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from dbgauto.errors import SymbolError
from dbgauto.util.atomic import atomic_write_bytes

__all__ = [
    "KIND_DATA",
    "KIND_FUNCTION",
    "KIND_UNKNOWN",
    "FieldInfo",
    "SymbolHit",
    "SymbolTable",
    "TypeInfo",
]

MAGIC = b"DBGSYMT1"
KIND_UNKNOWN, KIND_FUNCTION, KIND_DATA = 0, 1, 2
_DATA_PREFIXES = ("??_C@", "??_7", "??_R", "__imp_", "_imp_", "$$", "__guard_", "_guard_")
DEFAULT_MAX_OFFSET = 0x8000  # larger offsets from an unsized name are more likely a gap than one function


class FieldInfo(NamedTuple):
    """A member: byte offset and a short type text (``_LIST_ENTRY``, ``void*``, ``unsigned char[15]``,
    ``unsigned long:1@3`` for a bitfield of length 1 at bit 3)."""

    offset: int
    type: str


@dataclass(frozen=True, slots=True)
class TypeInfo:
    name: str
    size: int
    fields: Mapping[str, FieldInfo]
    kind: str = "struct"


class SymbolHit(NamedTuple):
    name: str
    offset: int
    exact: bool  # True: inside a function's known extent; False: nearest preceding name (no sizes known)


def is_data_name(name: str) -> bool:
    """Names the compiler gives only to data, never to code."""
    return name.startswith(_DATA_PREFIXES)


class SymbolTable:
    """Symbols and types of one module (RVAs, relative to its image base)."""

    def __init__(
        self,
        *,
        module: str,
        guid: str | None,
        age: int | None,
        machine: int | None,
        symbols: Iterable[tuple[str, int, int, int]],
        types: Mapping[str, Any] | bytes | None = None,
        source: str = "",
    ) -> None:
        """``symbols``: (name, rva, size, kind) rows; ``types``: name → [size, kind, {field: [offset, type]}]
        or the JSON text of that mapping (parsed when first needed)."""
        rows = sorted(symbols, key=lambda r: (r[1], r[3] != KIND_FUNCTION, r[0]))
        self.module = module
        self.guid = guid.upper() if guid else None
        self.age = age
        self.machine = machine
        self.source = source
        self._names = [r[0] for r in rows]
        self._rvas = array("I", [r[1] for r in rows])
        self._sizes = array("I", [r[2] for r in rows])
        self._kinds = array("B", [r[3] for r in rows])
        self._types_raw: bytes | None = None
        self._types: dict[str, Any] | None = None
        if isinstance(types, bytes | bytearray):
            self._types_raw = bytes(types)
        else:
            self._types = dict(types or {})
        self._by_name: dict[str, int] | None = None
        self._rvas_list: list[int] | None = None

    # --- identity -----------------------------------------------------------------------------------------------

    @property
    def pdb_id(self) -> str | None:
        """``GUID`` + age as the symbol store spells it (``5278AF...B844`` + ``1``)."""
        return f"{self.guid}{self.age:X}" if self.guid and self.age is not None else None

    @property
    def kinds_known(self) -> bool:
        return any(k != KIND_UNKNOWN for k in self._kinds)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"SymbolTable({self.module!r}, {self.pdb_id}, {len(self)} symbols)"

    # --- names --------------------------------------------------------------------------------------------------

    def rva(self, name: str) -> int | None:
        if self._by_name is None:
            by: dict[str, int] = {}
            for i, n in enumerate(self._names):
                by.setdefault(n, i)
            self._by_name = by
        i = self._by_name.get(name)
        return None if i is None else self._rvas[i]

    def names(self, pattern: str = "*") -> list[tuple[str, int]]:
        """(name, rva) for names matching a ``fnmatch`` pattern (``x nt!Name*``), in address order."""
        m = re.compile(fnmatch.translate(pattern), re.IGNORECASE).match
        return [(n, self._rvas[i]) for i, n in enumerate(self._names) if m(n)]

    def nearest(self, rva: int) -> SymbolHit | None:
        """The nearest symbol at or below ``rva`` of any kind (``ln``)."""
        rvas = self._rva_list()
        i = bisect.bisect_right(rvas, rva) - 1
        if i < 0:
            return None
        return SymbolHit(self._names[i], rva - rvas[i], False)

    def function_at(
        self, rva: int, *, max_offset: int = DEFAULT_MAX_OFFSET, code_ranges: Sequence[tuple[int, int]] | None = None
    ) -> SymbolHit | None:
        """The function holding code address ``rva`` (see the module docstring for the rule); None if unsure.

        ``code_ranges`` ((start, end) RVAs of the image's executable sections, when its header is at hand)
        rule out data addresses that a table without kinds cannot tell from code."""
        if code_ranges is not None and not any(a <= rva < b for a, b in code_ranges):
            return None
        rvas = self._rva_list()
        i = bisect.bisect_right(rvas, rva) - 1
        if i < 0:
            return None
        start = rvas[i]
        if rva - start > max_offset:
            return None
        kinds, names = self._kinds, self._names
        best = -1
        j = i
        while j >= 0 and rvas[j] == start:  # every name at this address (sorted functions first); a function wins
            k = kinds[j]
            if k == KIND_FUNCTION or (k == KIND_UNKNOWN and not is_data_name(names[j])):
                best = j
                if k == KIND_FUNCTION:
                    break
            j -= 1
        if best < 0:
            return None  # only data lives here: the address is not in code
        size = self._sizes[best]
        if kinds[best] == KIND_FUNCTION and size:
            return SymbolHit(names[best], rva - start, True) if rva < start + size else None
        return SymbolHit(names[best], rva - start, False)

    def _rva_list(self) -> list[int]:
        """The RVAs as a list: ``bisect`` on a list is several times faster than on an ``array``."""
        if self._rvas_list is None:
            self._rvas_list = self._rvas.tolist()
        return self._rvas_list

    # --- types --------------------------------------------------------------------------------------------------

    def _type_map(self) -> dict[str, Any]:
        if self._types is None:
            try:
                self._types = json.loads(self._types_raw or b"{}")
            except ValueError as e:
                raise SymbolError(self.source, f"type section unreadable: {e}") from None
            self._types_raw = None
        return self._types

    def type(self, name: str) -> TypeInfo | None:
        """A structure's layout (built once per table and name: a batch worker asks for _EPROCESS per dump)."""
        memo: dict[str, TypeInfo | None] | None = getattr(self, "_type_memo", None)
        if memo is None:
            memo = self._type_memo = {}
        if name in memo:
            return memo[name]
        raw = self._type_map().get(name)
        info = None
        if raw is not None:
            size, kind, fields = raw
            info = TypeInfo(name, size, MappingProxyType({k: FieldInfo(v[0], v[1]) for k, v in fields.items()}), kind)
        memo[name] = info
        return info

    def type_names(self) -> list[str]:
        return sorted(self._type_map())

    def field_offset(self, type_name: str, field_name: str) -> int | None:
        """Byte offset of a member; a dotted path (``Tcb.Header``) walks nested structures."""
        offset = 0
        current = type_name
        for part in field_name.split("."):
            t = self._type_map().get(current)
            if t is None or part not in t[2]:
                return None
            off, ftype = t[2][part]
            offset += off
            current = ftype
        return offset

    # --- the cache file -----------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        types = self._types_raw if self._types is None else json.dumps(self._types, separators=(",", ":")).encode()
        names = "\0".join(self._names).encode("utf-8")
        meta = {
            "module": self.module,
            "guid": self.guid,
            "age": self.age,
            "machine": self.machine,
            "source": self.source,
            "count": len(self._names),
            "names_len": len(names),
            "types_len": len(types or b""),
        }
        mb = json.dumps(meta, separators=(",", ":")).encode()
        return b"".join(
            [
                MAGIC,
                struct.pack("<I", len(mb)),
                mb,
                self._rvas.tobytes(),
                self._sizes.tobytes(),
                self._kinds.tobytes(),
                names,
                types or b"",
            ]
        )

    def save(self, path: Path) -> Path:
        return atomic_write_bytes(path, self.to_bytes(), overwrite=True)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "") -> SymbolTable:
        def bad(reason: str) -> SymbolError:
            return SymbolError(source, f"not a dbgauto symbol table: {reason}")

        if data[:8] != MAGIC or len(data) < 12:
            raise bad("bad signature")
        (mlen,) = struct.unpack_from("<I", data, 8)
        pos = 12 + mlen
        if pos > len(data):
            raise bad("truncated metadata")
        try:
            meta = json.loads(data[12:pos])
            n, nlen, tlen = int(meta["count"]), int(meta["names_len"]), int(meta["types_len"])
        except (ValueError, KeyError, TypeError) as e:
            raise bad(f"metadata: {e}") from None
        if n < 0 or nlen < 0 or tlen < 0 or pos + 9 * n + nlen + tlen != len(data):
            raise bad("section lengths do not add up to the file size")
        self = cls.__new__(cls)
        self.module, self.guid, self.age = meta["module"], meta["guid"], meta["age"]
        self.machine, self.source = meta["machine"], meta.get("source") or source
        self._rvas = array("I")
        self._rvas.frombytes(data[pos : pos + 4 * n])
        self._sizes = array("I")
        self._sizes.frombytes(data[pos + 4 * n : pos + 8 * n])
        self._kinds = array("B", data[pos + 8 * n : pos + 9 * n])
        pos += 9 * n
        names = data[pos : pos + nlen].decode("utf-8", "replace").split("\0") if n else []
        if len(names) != n:
            raise bad("name count differs from the address count")
        self._names = names
        self._types_raw = data[pos + nlen :]
        self._types = None
        self._by_name = None
        self._rvas_list = None
        return self

    @classmethod
    def load(cls, path: Path) -> SymbolTable:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise SymbolError(path, f"cannot read: {e.strerror or e}") from None
        return cls.from_bytes(data, str(path))
