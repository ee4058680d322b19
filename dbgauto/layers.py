"""The package's layer order, declared once: a module may import only from its own package or a lower tier.

``tests/test_layers.py`` reads every module with ``ast`` (imports inside functions included) and fails on an
upward import or an import between two packages of the same tier. ``docs/architecture.md`` draws the same order.
"""

from __future__ import annotations

from typing import Final

__all__ = ["TIERS", "tier_of"]

# Lowest first. Each entry: the top-level names under ``dbgauto`` (packages or modules) in that tier.
TIERS: Final[tuple[tuple[str, ...], ...]] = (
    ("errors", "layers", "version"),  # the exception tree; this table; the version
    ("util",),  # atomic writes, portable file access, codec, layouts, text safety
    ("vocab",),  # names and tables: bug checks, DumpTypes, machines, products, inbox modules, formatters
    ("kdump", "pe"),  # FORMATS: dump files; PE images
    ("kernel",),  # kernel objects over any dump: memory, KDBG, processors, threads, modules -> KernelParts
    ("symbols", "debugtext"),  # symbol path/server/PDB/ISF; parsers of debugger console text
    ("unwind",),  # stack unwinding (x64 unwind data, ARM64/x86 frame chains, filtered scan)
    ("analysis", "convert"),  # facts (model, culprit, from parts / from logs); small-dump writing from parts
    ("engines",),  # native, cdb/kd, DbgEng; jobs: who writes a small dump, facts of a session
    ("report", "catalog"),  # rendering; the SQLite catalog
    ("batch",),  # discovery, runner, coordinator, schedule
    ("cli",),  # click commands and the console
    ("__main__", "__init__"),  # ``python -m dbgauto``; the package's public face
)


def tier_of(top: str) -> int:
    """The tier of ``dbgauto.<top>``; KeyError for a name the table does not know."""
    for i, names in enumerate(TIERS):
        if top in names:
            return i
    raise KeyError(top)
