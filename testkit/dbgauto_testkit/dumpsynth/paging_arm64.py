"""ARM64 worlds: AArch64 stage-1 tables (4 KiB granule, 48-bit VA, levels 0-3) for synthetic Windows dumps.

Descriptors are written from the Arm ARM's VMSAv8-64 descriptor format, never from dbgauto: bit 0 valid,
bit 1 table (levels 0-2) or page (level 3), clear at levels 1-2 for a 1 GiB / 2 MiB block; AF bit 10,
SH bits 9:8, nG bit 11 (user pages), PXN 53 / UXN 54. The level indices equal x64's (VA[47:39], [38:30],
[29:21], [20:12]), so the x64 builder's allocator and bookkeeping are reused and only the descriptor
encoding differs. The header's DirectoryTableBase is the level-0 table (what MemProcFS and LeechCore read
from header offset 0x10), which holds a self-map entry ``dtb | UXN | PXN | 0b11`` as MemProcFS's
``MmARM64_TlbPageTableVerify`` expects of a Windows ARM64 top-level table.

API::

    Arm64AddressSpace(*, ram_bytes=64 MiB, ram_runs=None, placement="sequential", seed=0, memory=None,
                      self_map_index=0x1ED, xn=False)   # map/translate/read_virtual as AddressSpace;
                      # page sizes PAGE_4K, PAGE_2M (L2 block), PAGE_1G (L1 block)
    arm64_context(registers=None) -> bytes (0x390)     # ARM64 CONTEXT: Cpsr 0x4, X0-X28 0x8, Fp 0xF0,
                                                       # Lr 0xF8, Sp 0x100, Pc 0x108 (kd-structures.md §6)
    write_arm64_dump(path, space, dump_type, *, fields=None, **options) -> DumpInfo
                      # MachineImageType 0xAA64 and an ARM64 CONTEXT; options as write_dump's
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Mapping
from typing import Final

from .header import ExceptionFields, HeaderFields
from .paging import PAGE_1G, PAGE_2M, PAGE_4K, AddressSpace, Arch
from .physmem import PAGE_SIZE, PhysicalMemory, Run
from .writer import DumpInfo, write_dump

__all__ = ["ARM64_MACHINE", "Arm64AddressSpace", "arm64_context", "write_arm64_dump"]

ARM64_MACHINE: Final = 0xAA64
_VALID, _TABLE = 0x1, 0x2
_AF, _SH_INNER, _NG = 1 << 10, 0x3 << 8, 1 << 11
_PXN, _UXN = 1 << 53, 1 << 54
_KERNEL_FLOOR: Final = 0xFFFF_8000_0000_0000


class Arm64AddressSpace(AddressSpace):
    """An ARM64 address space: the x64 builder's bookkeeping with AArch64 descriptors."""

    def __init__(
        self,
        *,
        ram_bytes: int = 64 << 20,
        ram_runs: list[Run] | None = None,
        placement: str = "sequential",
        seed: int = 0,
        memory: PhysicalMemory | None = None,
        self_map_index: int | None = 0x1ED,
        xn: bool = False,
    ) -> None:
        super().__init__(
            Arch.X64, ram_bytes=ram_bytes, ram_runs=ram_runs, placement=placement, seed=seed, memory=memory
        )
        self._xn = _PXN | _UXN if xn else 0
        self.self_map_index = self_map_index
        if self_map_index is not None:
            if not 256 <= self_map_index < 512:
                raise ValueError("the self-map entry sits in the kernel half (256-511)")
            self._write_entry(self._top + self_map_index * 8, self._top | _UXN | _PXN | _VALID | _TABLE)

    machine = ARM64_MACHINE

    def _map_leaf(self, va_base: int, pa: int, page_size: int) -> None:
        levels = self._levels(va_base)
        if self.self_map_index is not None and levels[0][0] == self.self_map_index:
            raise ValueError(f"{va_base:#x} lies in the self-map slot")
        table = self._top
        user = 0 if va_base >= _KERNEL_FLOOR else _NG
        for depth, (index, span) in enumerate(levels):
            entry_pa = table + index * 8
            if span == page_size:
                if depth == 0:
                    break
                if self._read_entry(entry_pa) & _VALID:
                    raise ValueError(f"{va_base:#x} is already mapped")
                kind = _TABLE if depth == 3 else 0  # level 3: page (0b11); levels 1-2: block (0b01)
                self._write_entry(entry_pa, pa | _VALID | kind | _AF | _SH_INNER | user | self._xn)
                return
            entry = self._read_entry(entry_pa)
            if entry & _VALID:
                if not entry & _TABLE:
                    raise ValueError(f"{va_base:#x} lies inside an existing block")
                table = self._tables[entry_pa]
                continue
            child = self._new_table()
            self._write_entry(entry_pa, child | _VALID | _TABLE)
            self._tables[entry_pa] = child
            table = child
        raise ValueError(f"page size {page_size:#x} is not an AArch64 4 KiB-granule page or block")

    @property
    def page_sizes(self) -> tuple[int, ...]:
        return (PAGE_4K, PAGE_2M, PAGE_1G)


def arm64_context(registers: Mapping[str, int] | None = None) -> bytes:
    """A 0x390-byte ARM64 CONTEXT (ContextFlags 0x00400007: CONTROL | INTEGER | FLOATING_POINT)."""
    regs = {"pc": 0xFFFF_F803_5B40_1000, "sp": 0xFFFF_A080_1234_5F80, "lr": 0xFFFF_F803_5B40_0F00, **(registers or {})}
    buf = bytearray(0x390)
    struct.pack_into("<II", buf, 0, 0x0040_0007, regs.get("cpsr", 0x6000_0005))
    for i in range(29):
        struct.pack_into("<Q", buf, 0x8 + 8 * i, regs.get(f"x{i}", 0x1000 + i))
    struct.pack_into("<QQQQ", buf, 0xF0, regs.get("fp", regs["sp"] + 0x40), regs["lr"], regs["sp"], regs["pc"])
    return bytes(buf)


def write_arm64_dump(
    path: os.PathLike[str] | str,
    space: Arm64AddressSpace,
    dump_type: int,
    *,
    fields: HeaderFields | None = None,
    **options: object,
) -> DumpInfo:
    """A 64-bit dump of ``space`` with MachineImageType 0xAA64 and an ARM64 CONTEXT (DumpInfo.arch says x64)."""
    fields = fields or HeaderFields()
    ctx = fields.context if isinstance(fields.context, bytes | bytearray) else arm64_context(fields.context or None)
    exc = fields.exception
    if isinstance(exc, ExceptionFields) and exc.address is None:
        exc = dataclasses.replace(exc, address=struct.unpack_from("<Q", ctx, 0x108)[0])
    fields = dataclasses.replace(
        fields,
        machine_image_type=fields.machine_image_type or ARM64_MACHINE,
        context=bytes(ctx),
        exception=exc,
    )
    return write_dump(path, space, dump_type, fields=fields, **options)


assert PAGE_SIZE == PAGE_4K
