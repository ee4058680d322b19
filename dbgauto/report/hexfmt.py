"""Numbers as the reports print them: ``0x…`` hex and WinDbg-style addresses, blank when unknown.

One place for the HTML filters, the drivers table, the CSV and ``dbgauto catalog``, so a column reads the
same in every output.
"""

from __future__ import annotations

__all__ = ["addr_text", "hex_text"]


def hex_text(value: int | None, width: int = 0) -> str:
    """``0x`` plus at least ``width`` digits; ``-0x…`` for a negative; ``""`` for None."""
    if value is None:
        return ""
    return f"0x{value:0{width}x}" if value >= 0 else f"-0x{-value:x}"


def addr_text(value: int | None, is_64bit: bool | None = True) -> str:
    """An address as WinDbg prints it: 16 digits with a backtick on 64-bit targets, 8 on 32-bit; ``""`` for None."""
    if value is None:
        return ""
    if is_64bit is False:
        return f"{value & 0xFFFFFFFF:08x}"
    text = f"{value & 0xFFFFFFFFFFFFFFFF:016x}"
    return f"{text[:8]}`{text[8:]}"
