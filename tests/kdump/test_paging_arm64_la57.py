"""ARM64 (AArch64 4 KiB granule), x64 LA57 and transition PTEs through hand-written tables.

Descriptor values are typed in from the Arm ARM (valid bit 0, table/page bit 1, AF bit 10, nG bit 11,
PXN 53, UXN 54), Intel's 5-level paging white paper (PML5 index VA[56:48]) and MemProcFS's transition
rule ``(pte & 0xc01) == 0x800`` at the last level, never from dbgauto's walkers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kdump_handmade import bitmap_dump, page_of
from test_paging import Mem, _idx

from dbgauto.errors import TranslationError, UnsupportedMachineError
from dbgauto.kdump.reader import KernelDump

TABLE = 0x3  # valid + table (levels 0-2)
PAGE3 = 0x3  # valid + page (level 3)
BLOCK = 0x1  # valid, bit 1 clear (levels 1-2)
AF, NG, PXN, UXN = 1 << 10, 1 << 11, 1 << 53, 1 << 54
ARM64 = 0xAA64


def _arm_world() -> tuple[Mem, dict[str, int]]:
    m = Mem()
    l0, l1, l2, l3 = 0x1000, 0x2000, 0x3000, 0x4000
    va = {
        "page": 0xFFFF_8000_1234_5000,
        "block2m": 0xFFFF_8000_1260_0000 + 0x3456,
        "block1g": 0xFFFF_8000_4000_0000 + 0x0123_4567,
        "trans": 0xFFFF_8000_1234_6000,
        "user": 0x0000_0000_1234_5000,  # same L1-L3 indices as "page", L0 index 0
    }
    k = va["page"]
    m.q(l0 + _idx(k, 39) * 8, l1 | TABLE | (1 << 63))  # NSTable: an attribute bit the walker ignores
    m.q(l1 + _idx(k, 30) * 8, l2 | TABLE)
    m.q(l2 + _idx(k, 21) * 8, l3 | TABLE)
    m.q(l3 + _idx(k, 12) * 8, 0x7000 | PAGE3 | AF | NG | UXN | PXN)
    m.page(7)[:] = page_of(7)
    m.q(l3 + _idx(va["trans"], 12) * 8, 0x9000 | 0x800 | (4 << 5))  # transition, protection bits, valid clear
    m.page(9)[:] = page_of(9)
    m.q(l2 + _idx(va["block2m"], 21) * 8, 0x0040_0000 | BLOCK | AF)
    m.page(0x403)[:] = page_of(0x403)
    m.q(l1 + _idx(va["block1g"], 30) * 8, 0x4000_0000 | BLOCK | AF | UXN)
    m.page(0x40000 + 0x1234)[:] = page_of(0x41234)
    ul1 = 0x5000
    m.q(l0 + _idx(va["user"], 39) * 8, ul1 | TABLE)  # the user half through the same L0 table
    m.q(ul1 + _idx(va["user"], 30) * 8, l2 | TABLE)  # shares L2/L3 with the kernel: fine for a walker
    return m, va


def _open_bitmap(m: Mem, tmp_path: Path, **fields: int) -> KernelDump:
    pages = {pfn: bytes(p) for pfn, p in m.pages.items()}
    path = tmp_path / "arm64.dmp"
    path.write_bytes(bitmap_dump(pages, max(pages) + 64, **fields))
    return KernelDump.open(path)


def test_arm64_pages_blocks_and_transition(tmp_path: Path) -> None:
    m, va = _arm_world()
    with _open_bitmap(m, tmp_path, machine=ARM64, dtb=0x1000) as d:
        assert d.translate(va["page"] + 0x10) == 0x7010
        assert d.read_virtual(va["page"], 16) == page_of(7)[:16]
        assert d.translate(va["block2m"]) == 0x0040_3456
        assert d.read_virtual(va["block2m"], 8) == page_of(0x403)[0x456:0x45E]
        assert d.translate(va["block1g"]) == 0x4123_4567
        assert d.read_virtual(va["block1g"], 8) == page_of(0x41234)[0x567:0x56F]
        assert d.translate(va["trans"]) == 0x9000
        assert d.read_virtual(va["trans"], 32) == page_of(9)[:32]
        assert d.translate(va["user"] + 5) == 0x7005


def test_arm64_ttbr_asid_and_cnp_bits_are_masked(tmp_path: Path) -> None:
    m, va = _arm_world()
    with _open_bitmap(m, tmp_path, machine=ARM64, dtb=(0x2A << 48) | 0x1000 | 1) as d:
        assert d.translate(va["page"]) == 0x7000


def test_arm64_bad_descriptors_are_typed_errors(tmp_path: Path) -> None:
    m, va = _arm_world()
    k = va["page"]
    l0, l2, l3 = 0x1000, 0x3000, 0x4000
    bad_l3 = k + 0x2000
    m.q(l3 + _idx(bad_l3, 12) * 8, 0xA000 | 0x1)  # 0b01 at level 3: reserved
    prototype = k + 0x3000
    m.q(l3 + _idx(prototype, 12) * 8, 0xB000 | 0xC00)  # transition + prototype: not readable from a frame
    l0_block = 0xFFFF_FF80_0000_0000
    m.q(l0 + _idx(l0_block, 39) * 8, 0x8000_0000 | BLOCK)
    beyond = k + 0x0060_0000  # L2 table descriptor pointing far past RAM
    m.q(l2 + _idx(beyond, 21) * 8, 0x7F_0000_0000 | TABLE)
    looped = 0xFFFF_8000_12A0_0000  # an L2 "table" that is the L0 table itself: four reads, then an answer
    m.q(l2 + _idx(looped, 21) * 8, l0 | TABLE)
    with _open_bitmap(m, tmp_path, machine=ARM64, dtb=0x1000) as d:
        with pytest.raises(TranslationError, match="reserved"):
            d.translate(bad_l3)
        with pytest.raises(TranslationError, match=r"L3 descriptor .* not valid"):
            d.translate(prototype)
        with pytest.raises(TranslationError, match="L0 block"):
            d.translate(l0_block)
        with pytest.raises(TranslationError, match=r"L3 table page .* not in the dump"):
            d.translate(beyond)
        with pytest.raises(TranslationError, match="canonical 48-bit ARM64"):
            d.translate(0x00FF_8000_0000_0000)
        # self-reference: L2 → the L0 page read as an L3 table; its entry 0 (the user half's L1 table
        # descriptor, bits 1:0 = 0b11) reads as a page descriptor. Bounded: exactly four reads.
        assert d.translate(looped + 0x10) == 0x5010
        with pytest.raises(TranslationError):
            d.read_virtual(beyond, 4)
        assert d.read_virtual(beyond, 4, zero_fill=True) == bytes(4)


def _la57_world() -> tuple[Mem, int, int]:
    m = Mem()
    pml5, pml4, pdpt, pd, pt = 0x1000, 0x2000, 0x3000, 0x4000, 0x5000
    va = 0xFF12_3456_789A_B000  # 57-bit canonical, not 48-bit canonical
    m.q(pml5 + ((va >> 48) & 0x1FF) * 8, pml4 | 0x3)
    m.q(pml4 + _idx(va, 39) * 8, pdpt | 0x3)
    m.q(pdpt + _idx(va, 30) * 8, pd | 0x3)
    m.q(pd + _idx(va, 21) * 8, pt | 0x3)
    m.q(pt + _idx(va, 12) * 8, 0x7000 | 0x63)
    m.page(7)[:] = page_of(7)
    m.q(pt + _idx(va + 0x1000, 12) * 8, (1 << 45) | 0x8000 | 0x800 | 0x80)  # transition, L1TF bit 45 set
    m.page(8)[:] = page_of(8)
    return m, va, pml5


def test_la57_detected_from_header_pointers(tmp_path: Path) -> None:
    m, va, pml5 = _la57_world()
    with _open_bitmap(m, tmp_path, machine=0x8664, dtb=pml5, kdbg=0xFF7F_0000_0010_0000) as d:
        assert d.paging_levels == 5
        assert d.summary()["paging"] == "x64-la57"
        assert d.translate(va + 0x123) == 0x7123
        assert d.read_virtual(va, 16) == page_of(7)[:16]
        assert d.read_virtual(va + 0x1000, 16) == page_of(8)[:16]
        with pytest.raises(TranslationError, match="canonical 5-level"):
            d.translate(0xFE00_0000_0000_0000)


def test_la57_address_on_a_four_level_dump_is_a_typed_error(tmp_path: Path) -> None:
    m, va, pml5 = _la57_world()
    with _open_bitmap(m, tmp_path, machine=0x8664, dtb=pml5, kdbg=0xFFFF_F800_0010_0000) as d:
        assert d.paging_levels == 4
        with pytest.raises(TranslationError, match="LA57"):
            d.translate(va)
        d.set_paging_levels(5)  # what the kernel layer does once KDBG says PagingLevels == 5
        assert d.translate(va) == 0x7000
        with pytest.raises(ValueError):
            d.set_paging_levels(3)


def test_la57_refused_on_arm64(tmp_path: Path) -> None:
    m, _ = _arm_world()
    with _open_bitmap(m, tmp_path, machine=ARM64, dtb=0x1000) as d:
        with pytest.raises(UnsupportedMachineError, match="LA57"):
            d.set_paging_levels(5)
        assert d.paging_levels == 4


@pytest.mark.parametrize("is_pae", [True, False])
def test_x86_transition_ptes(tmp_path: Path, is_pae: bool) -> None:
    m = Mem()
    va = 0x8123_4000
    if is_pae:
        pdpt, pd, pt = 0x1020, 0x2000, 0x3000
        m.q(pdpt + (va >> 30) * 8, pd | 0x1)
        m.q(pd + ((va >> 21) & 0x1FF) * 8, pt | 0x3)
        m.q(pt + ((va >> 12) & 0x1FF) * 8, (1 << 45) | 0x7000 | 0x800 | 0x80)
        m.q(pt + (((va >> 12) + 1) & 0x1FF) * 8, 0x8000 | 0xC00)  # prototype: not followed
        dtb = pdpt
    else:
        pd, pt = 0x2000, 0x3000
        m.d(pd + (va >> 22) * 4, pt | 0x3)
        m.d(pt + ((va >> 12) & 0x3FF) * 4, 0x7000 | 0x800 | 0x80)
        m.d(pt + (((va >> 12) + 1) & 0x3FF) * 4, 0x8000 | 0xC00)
        dtb = pd
    m.page(7)[:] = page_of(7)
    m.page(8)[:] = page_of(8)
    path = m.dump(tmp_path, is_64bit=False, dtb=dtb)
    if is_pae:
        raw = bytearray(path.read_bytes())
        raw[0x5C] = 1  # PaeEnabled (spec §3)
        path.write_bytes(raw)
    with KernelDump.open(path) as d:
        assert d.read_virtual(va, 16) == page_of(7)[:16]
        with pytest.raises(TranslationError, match="not present"):
            d.translate(va + 0x1000)
