"""``module!function+0xoff`` for code addresses, and ``module+0xoff`` when no function can be named."""

from __future__ import annotations

from collections.abc import Sequence

from dbgauto.symbols.table import DEFAULT_MAX_OFFSET, SymbolHit, SymbolTable

__all__ = ["code_name", "format_hit"]


def format_hit(module: str, hit: SymbolHit | None, rva: int) -> str:
    if hit is None:
        return f"{module}+{rva:#x}"
    return f"{module}!{hit.name}+{hit.offset:#x}" if hit.offset else f"{module}!{hit.name}"


def code_name(
    address: int,
    base: int,
    table: SymbolTable | None,
    module: str,
    *,
    max_offset: int = DEFAULT_MAX_OFFSET,
    code_ranges: Sequence[tuple[int, int]] | None = None,
) -> str:
    """The debugger-style name of a code address in the module loaded at ``base`` (a data symbol never
    names a frame; without a table the answer is ``module+0xoff``)."""
    rva = address - base
    if rva < 0 or rva >= 1 << 32:
        return f"{address:#x}"
    hit = table.function_at(rva, max_offset=max_offset, code_ranges=code_ranges) if table is not None else None
    return format_hit(module, hit, rva)
