"""Declaring fixed binary layouts once: a table of (name, offset, struct code) rows.

Why not ctypes or dataclasses per structure: ctypes cannot view a read-only ``mmap`` without copying, and
the Windows structures we read are mostly "sparse" (a few fields in a 0x2000-byte header, the rest filler).
A :class:`Layout` compiles its rows into one ``struct.Struct`` with explicit padding, so one
``unpack_from`` on the mmap reads every field at once (zero-copy for the buffer; only the values are
created), and the same table packs the structure back for writers. Offsets are checked when the layout is
built (overlap or overflow raises), which replaces C's ``static_assert``; tests pin the tables.

"PAGE" filler: Windows pre-fills dump headers with the dword 0x45474150 ("PAGE") before writing the fields
it knows. :meth:`Layout.unpack` can map such values to ``None`` (absent), never to numbers.
"""

from __future__ import annotations

import itertools
import mmap
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

Buffer = bytes | bytearray | memoryview | mmap.mmap
"""Anything ``struct.unpack_from`` reads (``collections.abc.Buffer`` arrived only in Python 3.12)."""

PAGE_FILL: Final = b"PAGE"
PAGE_FILL32: Final = 0x45474150
PAGE_FILL64: Final = 0x4547415045474150

_SIZES = {"B": 1, "b": 1, "H": 2, "h": 2, "I": 4, "i": 4, "Q": 8, "q": 8, "s": 1, "x": 1}


@dataclass(frozen=True, slots=True)
class Field:
    """One row of a layout: ``count`` values of struct code ``kind`` at ``offset`` (``s``: a byte string)."""

    name: str
    offset: int
    kind: str
    count: int

    @property
    def size(self) -> int:
        return _SIZES[self.kind] * self.count

    @property
    def code(self) -> str:
        return f"{self.count}{self.kind}" if self.count != 1 else self.kind

    @property
    def n_values(self) -> int:
        """How many values struct yields for this field (a byte string is one value)."""
        return 1 if self.kind == "s" else self.count


def _parse_code(code: str) -> tuple[str, int]:
    digits = code[:-1]
    kind = code[-1]
    if kind not in _SIZES or kind == "x":
        raise ValueError(f"unsupported struct code {code!r}")
    return kind, int(digits) if digits else 1


class Layout:
    """A fixed little-endian structure: fields at explicit offsets inside ``size`` bytes."""

    def __init__(self, name: str, rows: Iterable[tuple[str, int, str]], size: int) -> None:
        self.name = name
        self.size = size
        fields = []
        for fname, offset, code in rows:
            kind, count = _parse_code(code)
            fields.append(Field(fname, offset, kind, count))
        fields.sort(key=lambda f: f.offset)
        fmt = ["<"]
        pos = 0
        seen: set[str] = set()
        for f in fields:
            if f.name in seen:
                raise ValueError(f"{name}: field {f.name} declared twice")
            seen.add(f.name)
            if f.offset < pos:
                raise ValueError(f"{name}: field {f.name} at {f.offset:#x} overlaps the previous field (ends {pos:#x})")
            if f.offset > pos:
                fmt.append(f"{f.offset - pos}x")
            fmt.append(f.code)
            pos = f.offset + f.size
        if pos > size:
            raise ValueError(f"{name}: fields end at {pos:#x}, past the declared size {size:#x}")
        if pos < size:
            fmt.append(f"{size - pos}x")
        self.fields: tuple[Field, ...] = tuple(fields)
        self.by_name: dict[str, Field] = {f.name: f for f in fields}
        self._struct = struct.Struct("".join(fmt))
        assert self._struct.size == size, (name, self._struct.size, size)
        self._single = {f.name: struct.Struct("<" + f.code) for f in fields}
        # Precomputed for unpack: names in value order when every field yields one value (dict(zip()) then),
        # else (name, first value index, value count) per field.
        self._names: tuple[str, ...] | None = (
            tuple(f.name for f in fields) if all(f.n_values == 1 for f in fields) else None
        )
        starts = itertools.accumulate((f.n_values for f in fields), initial=0)
        self._slices: tuple[tuple[str, int, int], ...] = tuple(
            (f.name, i, f.n_values) for f, i in zip(fields, starts, strict=False)
        )
        # "PAGE" checks for unpack(page_fill_absent=True): 4- and 8-byte scalars compare against one constant;
        # byte strings against their precomputed "PAGEPAGE..." pattern; arrays go through _is_fill; 1- and 2-byte
        # scalars can never hold the filler.
        self._fill_scalars: tuple[tuple[str, int, int], ...] = tuple(
            (f.name, 0xFFFFFFFF, PAGE_FILL32) if f.kind in "Ii" else (f.name, 0xFFFFFFFFFFFFFFFF, PAGE_FILL64)
            for f in fields
            if f.n_values == 1 and f.kind in "IiQq"
        )
        self._fill_strings: tuple[tuple[str, bytes], ...] = tuple(
            (f.name, (PAGE_FILL * (f.count // 4 + 1))[: f.count]) for f in fields if f.kind == "s" and f.count
        )
        self._fill_arrays: tuple[Field, ...] = tuple(f for f in fields if f.n_values != 1)

    def __repr__(self) -> str:
        return f"Layout({self.name}, size={self.size:#x}, fields={len(self.fields)})"

    def offset_of(self, name: str) -> int:
        return self.by_name[name].offset

    def unpack(self, buf: Buffer, offset: int = 0, *, page_fill_absent: bool = False) -> dict[str, Any]:
        """All fields at once. Arrays come back as tuples; with ``page_fill_absent`` "PAGE" values are None."""
        values = self._struct.unpack_from(buf, offset)
        out: dict[str, Any]
        if self._names is not None:
            out = dict(zip(self._names, values, strict=True))
        else:
            out = {name: values[i] if n == 1 else values[i : i + n] for name, i, n in self._slices}
        if page_fill_absent:
            for name, mask, fill in self._fill_scalars:
                if out[name] & mask == fill:
                    out[name] = None
            for name, pattern in self._fill_strings:
                if out[name] == pattern:
                    out[name] = None
            for f in self._fill_arrays:
                if _is_fill(f, out[f.name]):
                    out[f.name] = None
        return out

    def read(self, buf: Buffer, name: str, offset: int = 0) -> Any:
        """One field (cheaper than :meth:`unpack` when only a few are needed)."""
        f = self.by_name[name]
        vals = self._single[name].unpack_from(buf, offset + f.offset)
        return vals[0] if f.n_values == 1 else vals

    def pack(self, values: Mapping[str, Any], *, fill: bytes | None = None) -> bytearray:
        """A new ``size``-byte buffer: ``fill`` repeated (or zeros), then every given field written."""
        if fill:
            buf = bytearray((fill * (self.size // len(fill) + 1))[: self.size])
        else:
            buf = bytearray(self.size)
        self.pack_into(buf, 0, values)
        return buf

    def pack_into(self, buf: bytearray | memoryview, offset: int, values: Mapping[str, Any]) -> None:
        for name, v in values.items():
            if v is None:
                continue
            f = self.by_name[name]
            s = self._single[name]
            if f.n_values == 1:
                s.pack_into(buf, offset + f.offset, v)
            else:
                s.pack_into(buf, offset + f.offset, *v)


def _is_fill(f: Field, v: Any) -> bool:
    if f.kind == "s":
        return bool(v) and v == (PAGE_FILL * (len(v) // 4 + 1))[: len(v)]
    if f.n_values != 1:
        return all(_is_fill(Field(f.name, 0, f.kind, 1), x) for x in v)
    if f.kind in "Ii":
        return v & 0xFFFFFFFF == PAGE_FILL32
    if f.kind in "Qq":
        return v & 0xFFFFFFFFFFFFFFFF == PAGE_FILL64
    return False


def is_page_fill(data: Buffer) -> bool:
    """True when ``data`` is nothing but the "PAGE" filler (a field Windows never wrote)."""
    b = bytes(data)
    return bool(b) and b == (PAGE_FILL * (len(b) // 4 + 1))[: len(b)]
