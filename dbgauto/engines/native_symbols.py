"""The native engine's symbol commands: ``ln ADDR``, ``x nt!Name*``, ``dt nt!_TYPE [ADDR]``.

Laid out as kd lays them out, from the dump's :class:`~dbgauto.symbols.context.SymbolContext`. Without an
identified table they still answer what the driver list allows (``ln`` gives ``module+0xoff``) and say
"no symbols" with the reason; ``x`` and ``dt`` need a table and say so.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from dbgauto.vocab.fmt import addr_text

if TYPE_CHECKING:
    from dbgauto.symbols.context import SymbolContext
    from dbgauto.symbols.table import FieldInfo

__all__ = ["dt", "ln", "parse_address", "x"]

_BASE_SIZES: Final = {
    "char": 1, "unsigned char": 1, "signed char": 1, "bool": 1, "_Bool": 1,
    "short": 2, "unsigned short": 2, "wchar": 2, "wchar_t": 2,
    "int": 4, "unsigned int": 4, "long": 4, "unsigned long": 4, "float": 4,
    "long long": 8, "unsigned long long": 8, "double": 8, "__int64": 8, "unsigned __int64": 8,
}  # fmt: skip
_MAX_DT_BYTES: Final = 1 << 20
_HEX: Final = re.compile(r"^(?:0x)?([0-9a-f`]+)$", re.IGNORECASE)
_MODULE_OFFSET: Final = re.compile(r"^([A-Za-z0-9_.]+)\+(?:0x)?([0-9a-f`]+)$", re.IGNORECASE)


def _no_symbols(ctx: SymbolContext | None) -> str:
    return ctx.describe() if ctx is not None else "no symbols: the dump's kernel parts could not be read"


def parse_address(text: str, ctx: SymbolContext | None) -> int | None:
    """``fffff804`7bd2bf97``, ``0x...``, ``nt!Name``, ``nt!Name+0x10``, ``module+0x10``; None if not understood."""
    s = text.strip()
    m = _HEX.match(s)
    if m:
        return int(m.group(1).replace("`", ""), 16)
    if "!" in s and ctx is not None:
        sym, plus, off = s.partition("+")
        base = ctx.address_of(sym)
        if base is None:
            return None
        if not plus:
            return base
        o = _HEX.match(off)
        return base + int(o.group(1).replace("`", ""), 16) if o else None
    m = _MODULE_OFFSET.match(s)
    if m and ctx is not None:
        mod = next((d for d in ctx.inputs.drivers if d.short.lower() == m.group(1).lower()), None)
        if mod is not None:
            return mod.base + int(m.group(2).replace("`", ""), 16)
    return None


def ln(ctx: SymbolContext | None, args: str, is_64bit: bool) -> str:
    """``ln ADDR``: the function (or nearest symbol) holding an address."""
    addr = parse_address(args, ctx)
    if addr is None:
        raise ValueError(f"cannot evaluate {args.strip()!r} as an address")
    name = ctx.nearest_name(addr) if ctx is not None else None
    if name is None:
        return f"*** {addr_text(addr, is_64bit)} is not inside a loaded module\n"
    out = [f"({addr_text(addr, is_64bit)})   {name}"]
    if "!" not in name:
        table = ctx is not None and ctx.table is not None
        out.append(f"*** no symbols for {name.split('+')[0]}" if table else f"*** {_no_symbols(ctx)}")
    elif "+" not in name.partition("!")[2]:
        out.append("Exact matches:")
    return "\n".join(out) + "\n"


def x(ctx: SymbolContext | None, args: str, is_64bit: bool) -> str:
    """``x nt!Name*``: matching names of the kernel table with their addresses."""
    pattern = args.strip()
    if not pattern:
        raise ValueError("usage: x nt!Pattern")
    if ctx is None or ctx.table is None:
        return f"*** {_no_symbols(ctx)}\n"
    rows = ctx.lookup(pattern)
    return "".join(f"{addr_text(a, is_64bit)} {n}\n" for n, a in rows)


def _size_of(ctx: SymbolContext, type_text: str, pointer_size: int, depth: int = 0) -> int | None:
    t = type_text.strip()
    if depth > 8:
        return None
    if t.endswith("*"):
        return pointer_size
    m = re.match(r"^(.*)\[(\d+)\]$", t)
    if m:
        inner = _size_of(ctx, m.group(1), pointer_size, depth + 1)
        return inner * int(m.group(2)) if inner is not None else None
    if ":" in t and "@" in t:
        return _size_of(ctx, t.split(":", 1)[0], pointer_size, depth + 1)
    if t in _BASE_SIZES:
        return _BASE_SIZES[t]
    info = ctx.type(t)
    return info.size if info is not None else None


def _value_text(ctx: SymbolContext, f: FieldInfo, raw: bytes, pointer_size: int, is_64bit: bool) -> str:
    t = f.type
    m = re.match(r"^(unsigned )?char\[(\d+)\]$", t)
    if m:
        text = raw.split(b"\0", 1)[0].decode("ascii", "replace")
        return f'[{m.group(2)}]  "{text}"'
    if ":" in t and "@" in t:
        rest = t.split(":", 1)[1]
        length, pos = (int(v) for v in rest.split("@"))
        value = int.from_bytes(raw, "little") >> pos & ((1 << length) - 1)
        return f"0y{value:0{length}b}" if length <= 8 else f"{value:#x}"
    if t.endswith("*"):
        return f"0x{addr_text(int.from_bytes(raw, 'little'), is_64bit)} {t}"
    if t in _BASE_SIZES and len(raw) in (1, 2, 4, 8):
        v = int.from_bytes(raw, "little")
        return f"{v:#x}" if len(raw) < 8 else f"0x{addr_text(v, True)}"
    return t


def _bit_position(type_text: str) -> int:
    """A bitfield's bit position (``unsigned long:1@3`` → 3); -1 for whole members, listed first at an offset."""
    _, at, pos = type_text.rpartition("@")
    return int(pos) if at and pos.isdigit() else -1


def dt(ctx: SymbolContext | None, args: str, *, pointer_size: int, is_64bit: bool) -> str:
    """``dt nt!_TYPE [ADDR]``: fields with offsets; with an address, values read from the dump's memory."""
    words = args.split()
    if not words:
        raise ValueError("usage: dt nt!_TYPE [ADDR]")
    if ctx is None or ctx.table is None:
        return f"*** {_no_symbols(ctx)}\n"
    name = words[0]
    info = ctx.type(name)
    if info is None:
        return f"Symbol {name} not found.\n"
    raw: bytes | None = None
    addr = None
    if len(words) > 1:
        addr = parse_address(words[1], ctx)
        if addr is None:
            raise ValueError(f"cannot evaluate {words[1]!r} as an address")
        if 0 < info.size <= _MAX_DT_BYTES:
            raw = ctx.read(addr, info.size)
    label = name if "!" in name else f"nt!{name}"
    out = [label]
    if addr is not None and raw is None:
        out.append(f"*** memory at {addr_text(addr, is_64bit)} (+{info.size:#x}) is not in this dump")
    width = max((len(n) for n in info.fields), default=0)
    for fname, f in sorted(info.fields.items(), key=lambda kv: (kv[1].offset, _bit_position(kv[1].type))):
        value = f.type
        if raw is not None:
            size = _size_of(ctx, f.type, pointer_size) or 0
            if size and f.offset + size <= len(raw):
                value = _value_text(ctx, f, raw[f.offset : f.offset + size], pointer_size, is_64bit)
        out.append(f"   +{f.offset:#05x} {fname:<{width}} : {value}")
    return "\n".join(out) + "\n"
