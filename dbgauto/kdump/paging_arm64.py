"""VA → PA for Windows on ARM64: AArch64 stage-1 tables, 4 KiB granule, 48-bit VA, levels 0–3.

What the dump header's DirectoryTableBase holds (established from public readers, no Microsoft text):

* LeechCore ``leechcore/device_file.c`` accepts 64-bit Complete (1) and bitmap (5, 6) dumps whose
  MachineImageType is 0xAA64 and returns header offset 0x10 (DirectoryTableBase) as the OS DTB.
* MemProcFS ``vmm/mm/mm_arm64.c`` walks *both* halves of the address space from that one table:
  level 0 is indexed by VA[47:39] (kernel addresses, bit 47 set, use entries 256–511), and its
  page-table check wants a self-referencing entry (``(pte & 0x0063fffffffff073) == pa |
  0x0060000000000003``) in it, as Windows keeps on x64.

So the value is the physical address of the System process's level-0 table: the table Windows
loads into TTBR1_EL1 for the kernel half, laid out so that the same page also serves the user
half (TTBR0_EL1) of that process. We mask it as a TTBR: BADDR is bits [47:12] (the ASID in
[63:48] and CnP in bit 0 are not address bits).

Descriptor format (Arm ARM D8.3, "VMSAv8-64 translation table format descriptors"; the same
logic in MemProcFS ``MMARM64_PTE_IS_VALID``): bit 0 valid; at levels 0–2 bit 1 set = table, clear
= block (1 GiB at level 1, 2 MiB at level 2; a level-0 block does not exist with a 4 KiB granule);
at level 3 bits [1:0] = 0b11 is a page and 0b01 is reserved (invalid). The output address is bits
[47:12]; attribute bits (AF 10, nG 11, PXN 53, UXN 54, software 55–58) are masked off.

"Invalid but in transition": Windows keeps its software PTE formats on ARM64 too. MemProcFS
(``MMARM64_PTE_IS_TRANSITION``: ``(pte & 0x0c01) == 0x0800`` at level 3 only) reads such a page
from its frame: valid bit 0 clear, Prototype bit 10 clear, Transition bit 11 set, PFN in the
address bits. We follow the same rule, at level 3 only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from dbgauto.errors import PageNotPresentError, TranslationError

ReadEntry = Callable[[int, int], int]  # as in dbgauto.kdump.paging, which imports this module

TTBR_BADDR_MASK: Final = 0x0000_FFFF_FFFF_F000
OA_MASK: Final = 0x0000_FFFF_FFFF_F000
VALID: Final = 0x1
TABLE_OR_PAGE: Final = 0x2
TRANSITION_MASK: Final = 0xC01  # valid (0), Prototype (10), Transition (11)
TRANSITION: Final = 0x800
_LEVEL_SHIFT: Final = (39, 30, 21, 12)
_BLOCK_LEVELS: Final = {1: 0x3FFF_FFFF, 2: 0x1F_FFFF}  # level → offset mask of its block


def translate_arm64(va: int, dtb: int, read_entry: ReadEntry, path: os.PathLike[str] | str | None = None) -> int:
    """Four fixed levels from the level-0 table at ``dtb``; at most four reads, so table loops cannot spin."""
    va &= 0xFFFF_FFFF_FFFF_FFFF
    if va >> 48 not in (0, 0xFFFF):
        raise TranslationError(va, "not a canonical 48-bit ARM64 address (bits 63:48 must all equal bit 47)", path=path)
    table = dtb & TTBR_BADDR_MASK
    for level, shift in enumerate(_LEVEL_SHIFT):
        entry_pa = table + ((va >> shift) & 0x1FF) * 8
        try:
            desc = read_entry(entry_pa, 8)
        except PageNotPresentError:
            raise TranslationError(va, f"L{level} table page at {entry_pa:#x} is not in the dump", path=path) from None
        if not desc & VALID:
            if level == 3 and desc & TRANSITION_MASK == TRANSITION:
                return (desc & OA_MASK) | (va & 0xFFF)
            raise TranslationError(va, f"L{level} descriptor {desc:#x} at {entry_pa:#x} is not valid", path=path)
        if level == 3:
            if not desc & TABLE_OR_PAGE:
                raise TranslationError(va, f"L3 descriptor {desc:#x} at {entry_pa:#x} is reserved (0b01)", path=path)
            return (desc & OA_MASK) | (va & 0xFFF)
        if not desc & TABLE_OR_PAGE:
            offset_mask = _BLOCK_LEVELS.get(level)
            if offset_mask is None:
                raise TranslationError(
                    va, f"L0 block descriptor {desc:#x} at {entry_pa:#x} (none exist with a 4 KiB granule)", path=path
                )
            return (desc & OA_MASK & ~offset_mask) | (va & offset_mask)
        table = desc & OA_MASK
    raise AssertionError("unreachable: level 3 always returns")
