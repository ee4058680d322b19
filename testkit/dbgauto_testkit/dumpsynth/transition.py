"""Turn a mapped 4 KiB page into a Windows transition PTE: the frame stays in RAM, the entry is not valid.

MMPTE_TRANSITION, as MemProcFS reads it (``vmm/mm/mm_x64.c``, ``mm_x86pae.c``, ``mm_x86.c``,
``mm_arm64.c``: ``(pte & 0x0c01) == 0x0800`` at the last level): Valid bit 0 clear, Prototype bit 10 clear,
Transition bit 11 set, the frame in the address bits, protection in bits 9:5. ``l1tf`` also sets bit 45
of 8-byte x86/x64 entries, the high address bit Windows puts in not-present PTEs (MemProcFS masks it off
for x64 and PAE, not for ARM64).
The builder's own record still maps the VA to the frame, so ``read_virtual`` says what a reader must return.

API::

    make_transition(space, va, *, protection=4, l1tf=False) -> int   # the new entry value
"""

from __future__ import annotations

from .paging import AddressSpace, Arch

__all__ = ["make_transition"]


def make_transition(space: AddressSpace, va: int, *, protection: int = 4, l1tf: bool = False) -> int:
    """Rewrite the last-level entry mapping ``va`` (a 4 KiB page) as a transition PTE; returns its value."""
    if l1tf and getattr(space, "machine", None) == 0xAA64:
        raise ValueError("the L1TF high bit is an x86 mitigation; ARM64 transition PTEs do not carry it")
    levels = space._levels(va)
    size = space._entry.size
    table = space._top
    for index, _ in levels[:-1]:
        child = space._tables.get(table + index * size)
        if child is None:
            raise ValueError(f"{va:#x} is not mapped by a 4 KiB page")
        table = child
    entry_pa = table + levels[-1][0] * size
    old = space._read_entry(entry_pa)
    if not old & 1:
        raise ValueError(f"{va:#x} has no valid 4 KiB entry")
    frame_mask = 0xFFFF_F000 if space.arch is Arch.X86 else 0x000F_FFFF_FFFF_F000
    value = (old & frame_mask) | 0x800 | ((protection & 0x1F) << 5)
    if l1tf and size == 8:
        value |= 1 << 45
    space._write_entry(entry_pa, value)
    return value
