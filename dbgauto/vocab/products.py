"""NT_PRODUCT_TYPE and the SuiteMask bits: the one table of their names.

The debugger prints the NT names (``Product: WinNt, suite: TerminalServer``); reports say it in words
(``Workstation``); ``dbgauto info`` shows both (``WinNt (workstation)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["PRODUCT_TYPES", "SUITES", "ProductType", "product_type_label", "product_type_name", "product_type_nt_name",
           "suite_names"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ProductType:
    """One NT_PRODUCT_TYPE: the constant's name without ``Nt`` prefix and the words for it."""

    nt_name: str
    words: str


PRODUCT_TYPES: Final[dict[int, ProductType]] = {
    1: ProductType("WinNt", "Workstation"),
    2: ProductType("LanManNt", "Domain controller"),
    3: ProductType("ServerNt", "Server"),
}

# VER_SUITE_* bits of SuiteMask, in bit order (as the debugger lists them).
SUITES: Final[tuple[tuple[int, str], ...]] = (
    (0x0001, "SmallBusiness"),
    (0x0002, "Enterprise"),
    (0x0004, "BackOffice"),
    (0x0008, "CommunicationServer"),
    (0x0010, "TerminalServer"),
    (0x0020, "SmallBusinessRestricted"),
    (0x0040, "EmbeddedNT"),
    (0x0080, "DataCenter"),
    (0x0100, "SingleUserTS"),
    (0x0200, "Personal"),
    (0x0400, "Blade"),
    (0x0800, "EmbeddedRestricted"),
    (0x1000, "SecurityAppliance"),
    (0x2000, "StorageServer"),
    (0x4000, "ComputeServer"),
    (0x8000, "WHServer"),
)


def product_type_name(product_type: int | None) -> str | None:
    """NT_PRODUCT_TYPE (1 WinNt, 2 LanManNt, 3 Server) in words (``Workstation``); None when unknown."""
    row = None if product_type is None else PRODUCT_TYPES.get(product_type)
    return None if row is None else row.words


def product_type_nt_name(product_type: int | None) -> str | None:
    """The debugger's name (``WinNt``, ``LanManNt``, ``ServerNt``); None when unknown."""
    row = None if product_type is None else PRODUCT_TYPES.get(product_type)
    return None if row is None else row.nt_name


def product_type_label(product_type: int | None) -> str | None:
    """Both: ``WinNt (workstation)``; None when unknown."""
    row = None if product_type is None else PRODUCT_TYPES.get(product_type)
    return None if row is None else f"{row.nt_name} ({row.words.lower()})"


def suite_names(mask: int | None) -> list[str]:
    """The VER_SUITE_* names set in ``mask``, in bit order."""
    return [name for bit, name in SUITES if (mask or 0) & bit]
