"""Facts completed by a dump's symbols: frame names, identity from the table's types, how the table was known.

Kept apart from :mod:`dbgauto.analysis.from_dump` so that module only passes the context on. Without an
identified table nothing changes except the record of why (``x_symbols``) and the warnings of files set aside.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbgauto.analysis.facts import CrashFacts
    from dbgauto.kernel.parts import KernelParts
    from dbgauto.symbols.context import SymbolContext

__all__ = ["apply_symbols"]


def apply_symbols(facts: CrashFacts, symbols: SymbolContext, parts: KernelParts | None) -> CrashFacts:
    """``facts`` with named frames (``symbol``: ``nt!Function+0xoff`` when a function is known), the identity
    from the table's ``_EPROCESS``/``_ETHREAD`` offsets when it establishes all three values, and
    ``experimental["symbols"]`` saying which table and how (or why none)."""
    experimental = {**facts.experimental, "symbols": symbols.record()}
    changes: dict[str, object] = {"experimental": experimental}
    if symbols.table is not None and facts.stack is not None:
        frames = []
        for f in facts.stack.frames:
            got = symbols.name(f.value) if f.value is not None else None
            if got is not None and got[1] is not None:
                f = replace(f, symbol=f"{got[0]}!{got[1]}+{got[2]:#x}" if got[2] else f"{got[0]}!{got[1]}")
            frames.append(f)
        changes["stack"] = replace(facts.stack, frames=tuple(frames))
    if parts is not None:
        who = symbols.identity(parts.process, parts.thread, parts.pointer_size)
        if who is not None and who.process_name is not None and who.pid is not None and who.tid is not None:
            changes |= {"process_name": who.process_name, "pid": who.pid, "tid": who.tid}
            experimental["identity_method"] = "symbol-table"
    if symbols.warnings:
        changes["warnings"] = tuple(dict.fromkeys([*facts.warnings, *symbols.warnings]))
    return replace(facts, **changes)
