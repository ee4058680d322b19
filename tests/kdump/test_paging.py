"""VA → PA through hand-written page tables: x64 (4 KiB / 2 MiB / 1 GiB), x86 PAE and non-PAE."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from kdump_handmade import PAGE, bitmap_dump, full_dump, page_of

from dbgauto.errors import PageNotPresentError, TranslationError
from dbgauto.kdump.reader import KernelDump

P = 0x1  # present
W = 0x2
PS = 0x80  # large page


class Mem:
    """Physical pages by PFN, filled by the tests."""

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}

    def page(self, pfn: int) -> bytearray:
        return self.pages.setdefault(pfn, bytearray(PAGE))

    def q(self, pa: int, value: int) -> None:
        struct.pack_into("<Q", self.page(pa >> 12), pa & 0xFFF, value)

    def d(self, pa: int, value: int) -> None:
        struct.pack_into("<I", self.page(pa >> 12), pa & 0xFFF, value)

    def dump(self, tmp_path: Path, *, is_64bit: bool = True, **fields: int) -> Path:
        n = max(self.pages) + 1
        data = full_dump([(0, n)], {k: bytes(v) for k, v in self.pages.items()}, is_64bit=is_64bit, **fields)
        path = tmp_path / "paging.dmp"
        path.write_bytes(data)
        return path


def _idx(va: int, shift: int) -> int:
    return (va >> shift) & 0x1FF


def test_x64_4k_2m_1g_pages(tmp_path: Path) -> None:
    m = Mem()
    pml4, pdpt, pd, pt = 0x1000, 0x2000, 0x3000, 0x4000
    va4k = 0xFFFFF800_12345000
    m.q(pml4 + _idx(va4k, 39) * 8, pdpt | P | W)
    m.q(pdpt + _idx(va4k, 30) * 8, pd | P | W)
    m.q(pd + _idx(va4k, 21) * 8, pt | P | W)
    m.q(pt + _idx(va4k, 12) * 8, 0x8000_0000_0000_7000 | P)  # NX bit set: masked out
    m.page(7)[:] = page_of(7)
    m.page(8)[:] = page_of(8)
    m.q(pt + _idx(va4k + PAGE, 12) * 8, 0x8000 | P)
    # a 2 MiB page at PA 0x200000 (bit 12 = PAT must be ignored)
    va2m = 0xFFFFF800_12400000 + 0x1234
    m.q(pd + _idx(va2m, 21) * 8, 0x200000 | 0x1000 | PS | P)
    m.page(0x200 + 1)[:] = page_of(0x201)
    # a 1 GiB page mapping a low-half address, at PA 0x40000000 (not stored: translate only)
    va1g = 0x0000_0001_4000_0000 + 0x123456
    m.q(pml4 + _idx(va1g, 39) * 8, 0x5000 | P)
    m.q(0x5000 + _idx(va1g, 30) * 8, 0x40000000 | PS | P)
    path = m.dump(tmp_path, dtb=pml4 | 0x5)  # low 12 bits (PCID) must be masked
    with KernelDump.open(path) as d:
        assert d.translate(va4k + 0x10) == 0x7010
        assert d.read_virtual(va4k, PAGE) == page_of(7)
        assert d.read_virtual(va4k + PAGE - 8, 16) == page_of(7)[-8:] + page_of(8)[:8]  # crosses a page
        assert d.translate(va2m) == 0x201234
        assert d.read_virtual(va2m, 8) == page_of(0x201)[0x234:0x23C]
        assert d.translate(va1g) == 0x40123456
        with pytest.raises(PageNotPresentError):  # translates, but the page is beyond the dump
            d.read_virtual(va1g, 1)
        with pytest.raises(TranslationError, match="PT entry"):
            d.translate(va4k + 2 * PAGE)  # PTE zero
        with pytest.raises(TranslationError, match="PML4"):
            d.translate(0xFFFF_8000_0000_0000)
        with pytest.raises(TranslationError, match="canonical"):
            d.translate(0x0000_8000_0000_0000)
        assert d.read_virtual(va4k + PAGE, 2 * PAGE, zero_fill=True) == page_of(8) + bytes(PAGE)
        # an explicit DTB overrides the header's
        with pytest.raises(TranslationError):
            d.translate(va4k, dtb=0x6000)


def test_x64_missing_table_page_is_a_translation_error(tmp_path: Path) -> None:
    pages = {1: bytearray(PAGE)}
    struct.pack_into("<Q", pages[1], 0, 0x9000 | P)  # PML4[0] → a PDPT page not in the dump
    path = tmp_path / "bm.dmp"
    path.write_bytes(bitmap_dump({k: bytes(v) for k, v in pages.items()}, 64, dtb=0x1000))
    with KernelDump.open(path) as d, pytest.raises(TranslationError, match="not in the dump"):
        d.translate(0x1000)


def test_x86_pae_4k_and_2m(tmp_path: Path) -> None:
    m = Mem()
    pdpt = 0x1000 + 0x20  # 32-byte aligned inside its page
    pd, pt = 0x2000, 0x3000
    va = 0x8123_4000
    m.q(pdpt + (va >> 30) * 8, pd | P)
    m.q(pd + ((va >> 21) & 0x1FF) * 8, pt | P)
    m.q(pt + ((va >> 12) & 0x1FF) * 8, 0x5000 | P)
    m.page(5)[:] = page_of(5)
    va2m = 0x8060_0000 + 0x4321
    m.q(pd + ((va2m >> 21) & 0x1FF) * 8, 0x400000 | PS | P)
    m.page(0x404)[:] = page_of(0x404)
    path = m.dump(tmp_path, is_64bit=False, dtb=pdpt | 0x7, pae=1)  # low 5 bits masked
    with KernelDump.open(path) as d:
        assert d.header.pae_enabled is True
        assert d.translate(va + 0x10) == 0x5010
        assert d.read_virtual(va, 16) == page_of(5)[:16]
        assert d.translate(va2m) == 0x404321
        assert d.read_virtual(va2m, 4) == page_of(0x404)[0x321:0x325]
        with pytest.raises(TranslationError):
            d.translate(0x0000_1000)  # PDPT[0] empty
        with pytest.raises(TranslationError, match="32-bit"):
            d.translate(1 << 32)


def test_x86_non_pae_4k_and_4m(tmp_path: Path) -> None:
    m = Mem()
    pd, pt = 0x1000, 0x2000
    va = 0x8012_3000
    m.d(pd + (va >> 22) * 4, pt | P)
    m.d(pt + ((va >> 12) & 0x3FF) * 4, 0x6000 | P)
    m.page(6)[:] = page_of(6)
    va4m = 0xC040_0000 + 0x12345
    m.d(pd + (va4m >> 22) * 4, 0x400000 | PS | P)
    m.page(0x412)[:] = page_of(0x412)
    path = m.dump(tmp_path, is_64bit=False, dtb=pd, pae=0)
    with KernelDump.open(path) as d:
        assert d.header.pae_enabled is False
        assert d.translate(va + 0xABC) == 0x6ABC
        assert d.read_virtual(va, 8) == page_of(6)[:8]
        assert d.translate(va4m) == 0x412345
        assert d.read_virtual(va4m, 8) == page_of(0x412)[0x345:0x34D]
        with pytest.raises(TranslationError, match="PD entry"):
            d.translate(0x0040_0000)


def test_arm64_large_dump_translates(tmp_path: Path) -> None:
    """Once refused; now an L0 table whose entries are all invalid gives a TranslationError naming L0."""
    path = tmp_path / "arm.dmp"
    path.write_bytes(bitmap_dump({1: page_of(1)}, 64, machine=0xAA64, dtb=0x1000))
    with KernelDump.open(path) as d:
        assert d.read_physical(0x1000, 4) == page_of(1)[:4]
        assert d.summary()["paging"] == "arm64"
        with pytest.raises(TranslationError, match="L0 descriptor"):
            d.translate(0xFFFF_8000_0000_1000)
