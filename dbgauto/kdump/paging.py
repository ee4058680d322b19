"""VA → PA: walk the page tables found in a dump's physical memory (x64 4- and 5-level, x86 PAE and
non-PAE; ARM64 in :mod:`dbgauto.kdump.paging_arm64`).

The walkers take a ``read_entry(pa, size) -> int`` callable so they know nothing about the file; the reader
passes one that looks the page up in its physical map. A paging entry that is not present, or a table page
that the dump does not hold, is a :class:`TranslationError` naming the address and the level. Machines
other than AMD64, I386 and ARM64 are refused with :class:`UnsupportedMachineError`. Every walk has a fixed
number of levels, so a table that points back at itself costs at most that many reads.

Transition PTEs: a last-level entry with Valid (bit 0) clear, Prototype (bit 10) clear and Transition
(bit 11) set is Windows' MMPTE_TRANSITION: the page is still in RAM at the frame in the address bits (on
the standby/modified list), so it is read from there. Bit positions and the rule "last level only" are
MemProcFS's (``vmm/mm/mm_x64.c`` ``MMX64_PTE_IS_TRANSITION``, ``mm_x86pae.c``, ``mm_x86.c``: ``(pte &
0x0c01) == 0x0800`` at the PT level; kd-structures.md §8 says the same). For 8-byte entries MemProcFS
also clears bit 45 of the frame (mask ``0xffffdffffffff000``): Windows sets a high address bit in
not-present PTEs as its L1TF mitigation, so we clear it too (:data:`L1TF_SWIZZLE_BIT`).

LA57 (5-level paging): a PML5 level indexed by VA[56:48] sits above the PML4, and canonical addresses
sign-extend bit 56 instead of bit 47 (Intel, "5-Level Paging and 5-Level EPT" white paper, §2.2-2.3).
A dump does not say whether CR4.LA57 was set (the CONTEXT has no CR4; KDBG's PagingLevels and the
PRCB's special registers are kernel-layer facts), so :func:`x64_levels_from_pointers` reads it off the
header's kernel pointers: any that is 57-bit canonical but not 48-bit canonical proves 5 levels. The
kernel layer can still set the level count with ``KernelDump.set_paging_levels``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Final

from dbgauto.errors import PageNotPresentError, TranslationError, UnsupportedMachineError
from dbgauto.kdump.constants import Machine
from dbgauto.kdump.paging_arm64 import translate_arm64

ReadEntry = Callable[[int, int], int]
"""``read_entry(physical_address, size)`` → little-endian integer; raises PageNotPresentError."""

X64_PFN_MASK: Final = 0x000F_FFFF_FFFF_F000
X64_DTB_MASK: Final = ~0xFFF & 0xFFFF_FFFF_FFFF_FFFF
PAE_DTB_MASK: Final = ~0x1F & 0xFFFF_FFFF
PAE_PFN_MASK: Final = 0x000F_FFFF_FFFF_F000
PRESENT: Final = 1
LARGE: Final = 1 << 7
PROTOTYPE: Final = 1 << 10
TRANSITION: Final = 1 << 11
L1TF_SWIZZLE_BIT: Final = 1 << 45  # set by Windows in not-present 8-byte PTEs; not part of the frame

MODE_X64: Final = "x64"
MODE_X64_LA57: Final = "x64-la57"
MODE_PAE: Final = "x86-pae"
MODE_X86: Final = "x86"
MODE_ARM64: Final = "arm64"


def paging_mode(
    machine: int | None, pae: bool | None, path: os.PathLike[str] | str | None = None, *, levels: int = 4
) -> str:
    """Which walker a dump needs (``levels`` = 5 for LA57 x64); UnsupportedMachineError for other machines."""
    if levels not in (4, 5):
        raise ValueError(f"paging levels must be 4 or 5, not {levels}")
    if levels == 5 and machine != Machine.AMD64:
        name = f"{machine:#x}" if machine is not None else "absent"
        raise UnsupportedMachineError(path, f"5-level paging (LA57) exists only on AMD64, not machine {name}")
    if machine == Machine.AMD64:
        return MODE_X64_LA57 if levels == 5 else MODE_X64
    if machine == Machine.I386:
        return MODE_PAE if pae else MODE_X86
    if machine == Machine.ARM64:
        return MODE_ARM64
    name = f"{machine:#x}" if machine is not None else "absent ('PAGE' filler)"
    raise UnsupportedMachineError(path, f"machine {name}: virtual address translation is not supported")


def is_canonical(va: int, va_bits: int) -> bool:
    """True when bits 63..va_bits-1 of ``va`` are all equal (48 for 4-level, 57 for 5-level x64)."""
    top = (va & 0xFFFF_FFFF_FFFF_FFFF) >> (va_bits - 1)
    return top in (0, (1 << (65 - va_bits)) - 1)


def x64_levels_from_pointers(pointers: Iterable[int | None]) -> int:
    """5 when any kernel pointer is 57-bit canonical but not 48-bit canonical (only LA57 makes such VAs), else 4."""
    for p in pointers:
        if p is not None and p and not is_canonical(p, 48) and is_canonical(p, 57):
            return 5
    return 4


def _entry(
    read_entry: ReadEntry,
    pa: int,
    size: int,
    va: int,
    level: str,
    path: os.PathLike[str] | str | None,
    *,
    last: bool = False,
) -> int:
    try:
        value = read_entry(pa, size)
    except PageNotPresentError:
        raise TranslationError(va, f"{level} table page at {pa:#x} is not in the dump", path=path) from None
    if not value & PRESENT:
        if last and value & (TRANSITION | PROTOTYPE) == TRANSITION:
            return value & ~L1TF_SWIZZLE_BIT if size == 8 else value  # MMPTE_TRANSITION: still in RAM
        raise TranslationError(va, f"{level} entry {value:#x} at {pa:#x} is not present", path=path)
    return value


def translate_x64(va: int, dtb: int, read_entry: ReadEntry, path: os.PathLike[str] | str | None = None) -> int:
    """4-level x64 walk with 1 GiB and 2 MiB pages; the DTB's low 12 bits (PCID) are ignored."""
    va &= 0xFFFF_FFFF_FFFF_FFFF
    if not is_canonical(va, 48):
        why = " (a 5-level LA57 address, but this dump uses 4-level paging)" if is_canonical(va, 57) else ""
        raise TranslationError(va, f"not a canonical x64 address{why}", path=path)
    return _x64_from_pml4(va, dtb & X64_DTB_MASK, read_entry, path)


def translate_x64_la57(va: int, dtb: int, read_entry: ReadEntry, path: os.PathLike[str] | str | None = None) -> int:
    """5-level x64 walk: the PML5 at ``dtb`` (index VA[56:48]), then the 4-level walk of the PML4 it names."""
    va &= 0xFFFF_FFFF_FFFF_FFFF
    if not is_canonical(va, 57):
        raise TranslationError(va, "not a canonical 5-level (LA57) x64 address (bits 63:56 must all equal)", path=path)
    pml5e = _entry(read_entry, (dtb & X64_DTB_MASK) + ((va >> 48) & 0x1FF) * 8, 8, va, "PML5", path)
    return _x64_from_pml4(va, pml5e & X64_PFN_MASK, read_entry, path)


def _x64_from_pml4(va: int, pml4: int, read_entry: ReadEntry, path: os.PathLike[str] | str | None) -> int:
    pml4e = _entry(read_entry, pml4 + ((va >> 39) & 0x1FF) * 8, 8, va, "PML4", path)
    pdpte = _entry(read_entry, (pml4e & X64_PFN_MASK) + ((va >> 30) & 0x1FF) * 8, 8, va, "PDPT", path)
    if pdpte & LARGE:
        return (pdpte & X64_PFN_MASK & ~0x3FFF_FFFF) | (va & 0x3FFF_FFFF)
    pde = _entry(read_entry, (pdpte & X64_PFN_MASK) + ((va >> 21) & 0x1FF) * 8, 8, va, "PD", path)
    if pde & LARGE:
        return (pde & X64_PFN_MASK & ~0x1F_FFFF) | (va & 0x1F_FFFF)
    pte = _entry(read_entry, (pde & X64_PFN_MASK) + ((va >> 12) & 0x1FF) * 8, 8, va, "PT", path, last=True)
    return (pte & X64_PFN_MASK) | (va & 0xFFF)


def translate_x86_pae(va: int, dtb: int, read_entry: ReadEntry, path: os.PathLike[str] | str | None = None) -> int:
    """3-level PAE walk (32-byte aligned PDPT of 4 entries, 8-byte entries, 2 MiB pages)."""
    if va >> 32:
        raise TranslationError(va, "not a 32-bit address", path=path)
    pdpte = _entry(read_entry, (dtb & PAE_DTB_MASK) + (va >> 30) * 8, 8, va, "PDPT", path)
    pde = _entry(read_entry, (pdpte & PAE_PFN_MASK) + ((va >> 21) & 0x1FF) * 8, 8, va, "PD", path)
    if pde & LARGE:
        return (pde & PAE_PFN_MASK & ~0x1F_FFFF) | (va & 0x1F_FFFF)
    pte = _entry(read_entry, (pde & PAE_PFN_MASK) + ((va >> 12) & 0x1FF) * 8, 8, va, "PT", path, last=True)
    return (pte & PAE_PFN_MASK) | (va & 0xFFF)


def translate_x86(va: int, dtb: int, read_entry: ReadEntry, path: os.PathLike[str] | str | None = None) -> int:
    """2-level non-PAE walk (4-byte entries, 4 MiB pages)."""
    if va >> 32:
        raise TranslationError(va, "not a 32-bit address", path=path)
    pde = _entry(read_entry, (dtb & 0xFFFF_F000) + (va >> 22) * 4, 4, va, "PD", path)
    if pde & LARGE:
        return (pde & 0xFFC0_0000) | (va & 0x3F_FFFF)
    pte = _entry(read_entry, (pde & 0xFFFF_F000) + ((va >> 12) & 0x3FF) * 4, 4, va, "PT", path, last=True)
    return (pte & 0xFFFF_F000) | (va & 0xFFF)


WALKERS: Final[dict[str, Callable[[int, int, ReadEntry, os.PathLike[str] | str | None], int]]] = {
    MODE_X64: translate_x64,
    MODE_X64_LA57: translate_x64_la57,
    MODE_ARM64: translate_arm64,
    MODE_PAE: translate_x86_pae,
    MODE_X86: translate_x86,
}
