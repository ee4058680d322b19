"""x64 worlds with 5-level paging (CR4.LA57): a PML5 above the PML4, 57-bit canonical addresses.

From Intel's "5-Level Paging and 5-Level EPT" white paper (§2.2-2.3): the PML5 is indexed by VA[56:48],
its entries have the PML4E format, and a canonical address sign-extends bit 56 into bits 63:57. Entries are
written by the x64 builder's code (same flags); only the level list and the canonical check change.

API::

    La57AddressSpace(**AddressSpace options except arch)   # dtb = the PML5; map(va) with 57-bit VAs
    LA57_KERNEL_BASE = 0xFF00_0000_0000_0000                # the lower end of the 57-bit kernel half
"""

from __future__ import annotations

from typing import Final

from .paging import AddressSpace, Arch

__all__ = ["LA57_KERNEL_BASE", "La57AddressSpace"]

LA57_KERNEL_BASE: Final = 0xFF00_0000_0000_0000


class La57AddressSpace(AddressSpace):
    """An x64 address space with five table levels; ``sibling`` is not supported."""

    def __init__(self, **options: object) -> None:
        super().__init__(Arch.X64, **options)  # type: ignore[arg-type]

    def _levels(self, va: int) -> list[tuple[int, int]]:
        return [((va >> s) & 0x1FF, 1 << s) for s in (48, 39, 30, 21, 12)]

    def _check_va(self, va: int) -> None:
        if va >> 56 not in (0, 0xFF):
            raise ValueError(f"{va:#x} is not a canonical 57-bit (LA57) address")

    def sibling(self, *, dtb: int | None = None, share_kernel: bool = True) -> AddressSpace:
        raise NotImplementedError("La57AddressSpace has no sibling address spaces")
