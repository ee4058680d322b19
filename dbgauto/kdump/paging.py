"""VA → PA: walk the page tables found in a dump's physical memory (x64 4-level, x86 PAE and non-PAE).

The walkers take a ``read_entry(pa, size) -> int`` callable so they know nothing about the file; the reader
passes one that looks the page up in its physical map. A paging entry that is not present, or a table page
that the dump does not hold, is a :class:`TranslationError` naming the address and the level. ARM64 (and
anything else) large dumps are recognised and refused with :class:`UnsupportedMachineError`.
Facts: ``../shared/spec/kd-structures.md`` §8.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from dbgauto.errors import PageNotPresentError, TranslationError, UnsupportedMachineError
from dbgauto.kdump.constants import Machine

ReadEntry = Callable[[int, int], int]
"""``read_entry(physical_address, size)`` → little-endian integer; raises PageNotPresentError."""

X64_PFN_MASK: Final = 0x000F_FFFF_FFFF_F000
X64_DTB_MASK: Final = ~0xFFF & 0xFFFF_FFFF_FFFF_FFFF
PAE_DTB_MASK: Final = ~0x1F & 0xFFFF_FFFF
PAE_PFN_MASK: Final = 0x000F_FFFF_FFFF_F000
PRESENT: Final = 1
LARGE: Final = 1 << 7

MODE_X64: Final = "x64"
MODE_PAE: Final = "x86-pae"
MODE_X86: Final = "x86"


def paging_mode(machine: int | None, pae: bool | None, path: os.PathLike[str] | str | None = None) -> str:
    """Which walker a dump needs; UnsupportedMachineError for machines we cannot translate yet."""
    if machine == Machine.AMD64:
        return MODE_X64
    if machine == Machine.I386:
        return MODE_PAE if pae else MODE_X86
    if machine == Machine.ARM64:
        raise UnsupportedMachineError(
            path,
            "ARM64 large dumps are not supported yet: virtual addresses cannot be translated (physical reads work)",
        )
    name = f"{machine:#x}" if machine is not None else "absent ('PAGE' filler)"
    raise UnsupportedMachineError(path, f"machine {name}: virtual address translation is not supported")


def _entry(read_entry: ReadEntry, pa: int, size: int, va: int, level: str, path: os.PathLike[str] | str | None) -> int:
    try:
        value = read_entry(pa, size)
    except PageNotPresentError:
        raise TranslationError(va, f"{level} table page at {pa:#x} is not in the dump", path=path) from None
    if not value & PRESENT:
        raise TranslationError(va, f"{level} entry {value:#x} at {pa:#x} is not present", path=path)
    return value


def translate_x64(va: int, dtb: int, read_entry: ReadEntry, path: os.PathLike[str] | str | None = None) -> int:
    """4-level x64 walk with 1 GiB and 2 MiB pages; the DTB's low 12 bits (PCID) are ignored."""
    va &= 0xFFFF_FFFF_FFFF_FFFF
    top = va >> 47
    if top not in (0, 0x1FFFF):
        raise TranslationError(va, "not a canonical x64 address", path=path)
    pml4e = _entry(read_entry, (dtb & X64_DTB_MASK) + ((va >> 39) & 0x1FF) * 8, 8, va, "PML4", path)
    pdpte = _entry(read_entry, (pml4e & X64_PFN_MASK) + ((va >> 30) & 0x1FF) * 8, 8, va, "PDPT", path)
    if pdpte & LARGE:
        return (pdpte & X64_PFN_MASK & ~0x3FFF_FFFF) | (va & 0x3FFF_FFFF)
    pde = _entry(read_entry, (pdpte & X64_PFN_MASK) + ((va >> 21) & 0x1FF) * 8, 8, va, "PD", path)
    if pde & LARGE:
        return (pde & X64_PFN_MASK & ~0x1F_FFFF) | (va & 0x1F_FFFF)
    pte = _entry(read_entry, (pde & X64_PFN_MASK) + ((va >> 12) & 0x1FF) * 8, 8, va, "PT", path)
    return (pte & X64_PFN_MASK) | (va & 0xFFF)


def translate_x86_pae(va: int, dtb: int, read_entry: ReadEntry, path: os.PathLike[str] | str | None = None) -> int:
    """3-level PAE walk (32-byte aligned PDPT of 4 entries, 8-byte entries, 2 MiB pages)."""
    if va >> 32:
        raise TranslationError(va, "not a 32-bit address", path=path)
    pdpte = _entry(read_entry, (dtb & PAE_DTB_MASK) + (va >> 30) * 8, 8, va, "PDPT", path)
    pde = _entry(read_entry, (pdpte & PAE_PFN_MASK) + ((va >> 21) & 0x1FF) * 8, 8, va, "PD", path)
    if pde & LARGE:
        return (pde & PAE_PFN_MASK & ~0x1F_FFFF) | (va & 0x1F_FFFF)
    pte = _entry(read_entry, (pde & PAE_PFN_MASK) + ((va >> 12) & 0x1FF) * 8, 8, va, "PT", path)
    return (pte & PAE_PFN_MASK) | (va & 0xFFF)


def translate_x86(va: int, dtb: int, read_entry: ReadEntry, path: os.PathLike[str] | str | None = None) -> int:
    """2-level non-PAE walk (4-byte entries, 4 MiB pages)."""
    if va >> 32:
        raise TranslationError(va, "not a 32-bit address", path=path)
    pde = _entry(read_entry, (dtb & 0xFFFF_F000) + (va >> 22) * 4, 4, va, "PD", path)
    if pde & LARGE:
        return (pde & 0xFFC0_0000) | (va & 0x3F_FFFF)
    pte = _entry(read_entry, (pde & 0xFFFF_F000) + ((va >> 12) & 0x3FF) * 4, 4, va, "PT", path)
    return (pte & 0xFFFF_F000) | (va & 0xFFF)


WALKERS: Final[dict[str, Callable[[int, int, ReadEntry, os.PathLike[str] | str | None], int]]] = {
    MODE_X64: translate_x64,
    MODE_PAE: translate_x86_pae,
    MODE_X86: translate_x86,
}
