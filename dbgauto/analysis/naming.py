"""How a code address is named in the verdict: ``module!function+0xoff`` with symbols, ``module+0xoff`` without.

The analysis layer takes any :class:`Symbolizer` (the symbols layer supplies one backed by PDBs); without one,
:class:`ModuleSymbolizer` names addresses from the dump's driver list alone. The convention for the returned
``offset``: relative to the function's start when ``function`` is known, else relative to the module base.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from dbgauto.vocab.modules import module_short_name

__all__ = ["ModuleSymbolizer", "Symbolizer", "location_text", "module_short_name"]


@runtime_checkable
class Symbolizer(Protocol):
    """Names a code address: (module, function or None, offset), or None when it lies in no known module."""

    def name(self, address: int) -> tuple[str, str | None, int] | None: ...


class ModuleSymbolizer:
    """Module+offset naming from (name, base, size) ranges; function always None."""

    def __init__(self, modules: Iterable[tuple[str, int | None, int | None]]) -> None:
        ranges = sorted((b, b + s, n) for n, b, s in modules if b is not None and s)
        self._starts = [r[0] for r in ranges]
        self._ranges = ranges

    def name(self, address: int) -> tuple[str, str | None, int] | None:
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0:
            return None
        start, end, name = self._ranges[i]
        return (name, None, address - start) if address < end else None


def location_text(module: str | None, function: str | None, offset: int | None) -> str | None:
    """``module!function+0xoff`` (debugger style, module short name) or ``module+0xoff``; None without a module."""
    if module is None:
        return None
    short = module_short_name(module)
    if function:
        return f"{short}!{function}+{offset:#x}" if offset else f"{short}!{function}"
    return f"{short}+{offset:#x}" if offset is not None else short
