"""Bug check names and parameter meanings, from the packaged ``dbgauto/vocab/data/bugchecks.csv``.

The table restates Microsoft's bug check code reference (CC BY 4.0, attribution in ``dbgauto/vocab/data/README.md``).
It is read once, lazily, on the first :func:`lookup`, so importing this module costs nothing.
The ``_M`` variants (0x1000007E, 0x1000008E, ...) are rows of their own; parameters documented as
"depends on Parameter 1" are kept as that text, because the subtype tables are not in the data.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
from dataclasses import dataclass
from pathlib import Path

__all__ = ["M_VARIANT_BIT", "BugcheckInfo", "all_bugchecks", "base_code", "bugcheck_name", "is_m_variant", "lookup"]

log = logging.getLogger(__name__)

# Windows reports some bug checks with bit 28 set (the "_M" variants: 0x1000007E, 0x1000008E, ...); the
# parameters are those of the base code.
M_VARIANT_BIT = 0x10000000


@dataclass(frozen=True, slots=True)
class BugcheckInfo:
    """One row of the bug check reference: what the code is called and what each parameter holds."""

    code: int
    name: str
    parameters: tuple[str | None, str | None, str | None, str | None]
    summary: str | None


def is_m_variant(code: int) -> bool:
    """True for the ``_M`` codes (bit 28 set over a small base code)."""
    return bool(code & M_VARIANT_BIT) and (code & ~M_VARIANT_BIT) < 0x1000


def base_code(code: int) -> int:
    """The base code of an ``_M`` variant (0x1000007E → 0x7E); other codes unchanged."""
    return code & ~M_VARIANT_BIT if is_m_variant(code) else code


@functools.cache
def _table() -> dict[int, BugcheckInfo]:
    packaged = Path(__file__).resolve().parent / "data" / "bugchecks.csv"
    if packaged.is_file():  # wheels and editable installs: a plain file (importlib.resources costs ~10 ms to import)
        text = packaged.read_text(encoding="utf-8")
    else:  # zipped installs
        from importlib import resources

        text = resources.files("dbgauto.vocab.data").joinpath("bugchecks.csv").read_text(encoding="utf-8")
    table: dict[int, BugcheckInfo] = {}
    for row in csv.DictReader(io.StringIO(text)):
        code = int(row["code"], 16)
        params = tuple((row.get(f"p{i}") or "").strip() or None for i in range(1, 5))
        table[code] = BugcheckInfo(
            code=code,
            name=row["name"].strip(),
            parameters=(params[0], params[1], params[2], params[3]),
            summary=(row.get("summary") or "").strip() or None,
        )
    log.debug("loaded %d bug check codes", len(table))
    return table


def lookup(code: int) -> BugcheckInfo | None:
    """The reference row for ``code``; an ``_M`` code missing from the table falls back to its base code.

    The fallback keeps the base code's parameters and appends ``_M`` to its name, as the reference does
    for the variants it lists.
    """
    table = _table()
    info = table.get(code)
    if info is not None or not is_m_variant(code):
        return info
    base = table.get(base_code(code))
    if base is None:
        return None
    return BugcheckInfo(code=code, name=f"{base.name}_M", parameters=base.parameters, summary=base.summary)


def all_bugchecks() -> list[BugcheckInfo]:
    """Every row, in code order (for docs and tests)."""
    return [info for _, info in sorted(_table().items())]


@functools.lru_cache(maxsize=1024)  # a pure function of the code; the same few codes recur across dumps
def bugcheck_name(code: int | None) -> str | None:
    """The stop code's symbolic name (None when unknown or absent)."""
    if code is None:
        return None
    info = lookup(code)
    return info.name if info else None
