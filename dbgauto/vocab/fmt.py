"""Numbers as people read them: ``0x…`` hex, WinDbg-style addresses, uptimes; blank when unknown.

One place for the native engine's debugger emulation, the HTML filters, the drivers table, the CSV,
``dbgauto info`` and ``dbgauto catalog``, so a value reads the same in every output. (JSON writes
numbers with ``dbgauto.util.codec.hex_or_none``.)
"""

from __future__ import annotations

__all__ = ["addr_text", "hex_text", "uptime_text"]


def hex_text(value: int | None, width: int = 0) -> str:
    """``0x`` plus at least ``width`` digits; ``-0x…`` for a negative; ``""`` for None."""
    if value is None:
        return ""
    return f"0x{value:0{width}x}" if value >= 0 else f"-0x{-value:x}"


def addr_text(value: int | None, is_64bit: bool | None = True) -> str:
    """An address as WinDbg prints it: 16 digits with a backtick on 64-bit targets (``fffff804`7ba00000``),
    8 on 32-bit ones (``804d7000``); ``""`` for None."""
    if value is None:
        return ""
    if is_64bit is False:
        return f"{value & 0xFFFFFFFF:08x}"
    text = f"{value & 0xFFFFFFFFFFFFFFFF:016x}"
    return f"{text[:8]}`{text[8:]}"


def uptime_text(raw_100ns: int, *, hour_digits: int = 1, zero_days: bool = True) -> str:
    """A duration in 100 ns units as the debugger prints System Uptime: ``0 days 0:02:09.764`` (truncated to
    the millisecond, as cdb does). ``hour_digits=2``: ``00:02:09.764`` (WinDbgX); ``zero_days=False`` drops a
    leading ``0 days``."""
    ms_total = max(raw_100ns, 0) // 10_000
    days, rem = divmod(ms_total, 86_400_000)
    hours, rem = divmod(rem, 3_600_000)
    minutes, rem = divmod(rem, 60_000)
    seconds, ms = divmod(rem, 1000)
    clock = f"{hours:0{hour_digits}d}:{minutes:02d}:{seconds:02d}.{ms:03d}"
    return f"{days} days {clock}" if days or zero_days else clock
