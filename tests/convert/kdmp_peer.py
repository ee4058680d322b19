"""Reading virtual memory through kdmp-parser (an independent peer of dbgauto), shared by the peer checks."""

from __future__ import annotations

from typing import Any


def read_virtual(parser: Any, va: int, size: int, dtb: int) -> bytes:
    """`size` bytes at `va` through kdmp-parser's page reader, failing the test on any unreadable page."""
    out = bytearray()
    addr = va
    while addr < va + size:
        page = parser.read_virtual_page(addr & ~0xFFF, dtb)
        assert page is not None, f"kdmp-parser cannot read {addr:#x}"
        start = addr & 0xFFF
        n = min(0x1000 - start, va + size - addr)
        out += bytes(page[start : start + n])
        addr += n
    return bytes(out)
