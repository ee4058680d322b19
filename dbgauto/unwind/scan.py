"""The filtered stack scan: the last resort, labelled ``scan``.

A stack word is taken as a return address only when it points into an executable section of a known module
(the section table of the module's image; when no image is available, anywhere in the module) and, when the
image's bytes are at hand, the instruction before it is a call (x86/x64: ``call rel32``, ``call [rip+d32]``,
``call reg``/``call [reg+d]``; ARM64: ``bl``/``blr``). Values listed in ``exclude`` (bugcheck parameters,
pointers already shown) are never reported.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from dbgauto.unwind.model import Memory, ModuleMap

_BL_MASK, _BL = 0xFC000000, 0x94000000
_BLR_MASK, _BLR = 0xFFFFFC1F, 0xD63F0000
_BLRAx_MASK, _BLRAx = 0xFEFFF800, 0xD63F0800  # BLRAA/BLRAB (pointer-authenticated calls)


def follows_call(mods: ModuleMap, va: int, arch: str) -> bool | None:
    """Whether the instruction before ``va`` is a call; None when the image bytes are not available."""
    m = mods.find(va)
    img = mods.image(m) if m is not None else None
    if m is None or img is None:
        return None
    rva = va - m.base
    if arch == "arm64":
        raw = img.read_rva(rva - 4, 4)
        if raw is None:
            return None
        ins = struct.unpack_from("<I", raw)[0]
        return (ins & _BL_MASK) == _BL or (ins & _BLR_MASK) == _BLR or (ins & _BLRAx_MASK) == _BLRAx
    raw = img.read_rva(rva - 7, 7)
    if raw is None:
        return None
    b = bytes(raw)
    if b[2] == 0xE8:  # call rel32
        return True
    if b[1] == 0xFF and b[2] == 0x15:  # call [rip+disp32] / [disp32]
        return True
    if b[5] == 0xFF and 0xD0 <= b[6] <= 0xD7:  # call reg
        return True
    # call [reg+disp8] (FF 50+r d8) or [reg+disp32] (FF 90+r d32), and call [reg] (FF 10+r)
    if b[4] == 0xFF and 0x50 <= b[5] <= 0x57:
        return True
    if b[1] == 0xFF and 0x90 <= b[2] <= 0x97:
        return True
    if b[5] == 0xFF and 0x10 <= b[6] <= 0x17:
        return True
    # SIB forms: FF 14 24 (call [rsp]), FF 54 24 d8
    return (b[4] == 0xFF and b[5] == 0x14) or (b[3] == 0xFF and b[4] == 0x54)


def is_candidate(mods: ModuleMap, va: int, arch: str, exclude: frozenset[int]) -> bool:
    if va in exclude:
        return False
    code = mods.is_code(va)
    if code is False:
        return False
    return follows_call(mods, va, arch) is not False


def scan(
    read: Memory,
    mods: ModuleMap,
    arch: str,
    start: int,
    words: int,
    *,
    exclude: frozenset[int] = frozenset(),
    high: int | None = None,
) -> Iterator[tuple[int, int]]:
    """Yield (slot address, value) for candidate return addresses in ``words`` stack words from ``start``."""
    ws = 4 if arch == "x86" else 8
    end = start + words * ws
    if high is not None:
        end = min(end, high)
    pos = start
    while pos < end:
        n = min((pos & ~0xFFF) + 0x1000, end) - pos  # page by page: a stack copy ends at a page boundary
        n -= n % ws
        if n <= 0:
            return
        raw = read(pos, n)
        if raw is None:
            return  # a hole ends the stack
        fmt = f"<{n // ws}{'I' if ws == 4 else 'Q'}"
        for i, v in enumerate(struct.unpack_from(fmt, raw)):
            if v and is_candidate(mods, v, arch, exclude):
                yield pos + i * ws, v
        pos += n
