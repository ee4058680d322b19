"""Frame-pointer chains: ARM64 (x29 → {previous x29, x30}) and x86 (EBP → {previous EBP, return EIP}).

Windows ARM64 code keeps a frame record chain; x86 code compiled with frame pointers keeps the EBP chain.
A link is followed only when the next frame pointer is above the current one (stacks grow down), inside the
stack bounds, aligned, and the return address points into executable code of a known module.
"""

from __future__ import annotations

import struct

from dbgauto.unwind.model import Memory, ModuleMap


def follow(read: Memory, mods: ModuleMap, fp: int, ws: int, low: int, high: int) -> tuple[int, int] | None:
    """(previous fp, return address) of the frame record at ``fp``, or None when it does not validate."""
    if not low <= fp <= high - 2 * ws or fp % ws:
        return None
    raw = read(fp, 2 * ws)
    if raw is None or len(raw) < 2 * ws:
        return None
    prev, ret = struct.unpack_from("<II" if ws == 4 else "<QQ", raw)
    if ret == 0 or mods.is_code(ret) is False:
        return None
    return prev, ret


def next_fp_ok(prev: int, fp: int, ws: int, low: int, high: int) -> bool:
    """The caller's frame record must be strictly above this one and inside the stack (0 ends the chain)."""
    return prev > fp and low <= prev <= high - 2 * ws and prev % ws == 0
