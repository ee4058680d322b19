"""Tiny kernel dumps built by hand for the format-layer tests (offsets typed in from the spec, not dbgauto's).

Independent of ``dbgauto.kdump.structs`` on purpose: if a Layout row is wrong, these files disagree with it.
Offsets: ../shared/spec/dump-format.md §3 (32-bit), §4 (64-bit), §7 (runs), §10 (bitmap), §11 (RDMP).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

PAGE = 0x1000
FILL = b"PAGE"

# 64-bit header offsets (spec §4)
H64 = {
    "dtb": (0x010, "<Q"),
    "pfn_database": (0x018, "<Q"),
    "ps_loaded_module_list": (0x020, "<Q"),
    "ps_active_process_head": (0x028, "<Q"),
    "machine": (0x030, "<I"),
    "processors": (0x034, "<I"),
    "bugcheck_code": (0x038, "<I"),
    "kdbg": (0x080, "<Q"),
    "dump_type": (0xF98, "<I"),
    "required_dump_space": (0xFA0, "<Q"),
    "system_time": (0xFA8, "<Q"),
    "uptime": (0x1030, "<Q"),
    "product_type": (0x1040, "<I"),
    "attributes": (0x1050, "<I"),
}
# 32-bit header offsets (spec §3)
H32 = {
    "dtb": (0x010, "<I"),
    "machine": (0x020, "<I"),
    "processors": (0x024, "<I"),
    "bugcheck_code": (0x028, "<I"),
    "kdbg": (0x060, "<I"),
    "dump_type": (0xF88, "<I"),
    "required_dump_space": (0xFA0, "<Q"),
    "uptime": (0xFB8, "<Q"),
    "system_time": (0xFC0, "<Q"),
    "attributes": (0x8A0, "<I"),
}


def header(is_64bit: bool, dump_type: int, **fields: int) -> bytearray:
    """A "PAGE"-filled header with signature, DumpType, machine (AMD64 / i386) and the given fields."""
    size = 0x2000 if is_64bit else 0x1000
    buf = bytearray(FILL * (size // 4))
    buf[0:8] = b"PAGEDU64" if is_64bit else b"PAGEDUMP"
    table = H64 if is_64bit else H32
    values = {"machine": 0x8664 if is_64bit else 0x14C, "dump_type": dump_type, "major_version": 0xF}
    values.update(fields)
    struct.pack_into("<II", buf, 8, 0xF, 19041 if is_64bit else 7601)
    for name, value in values.items():
        if name in ("major_version",):
            continue
        if name == "pae":
            buf[0x5C] = value
            buf[0x5D:0x60] = b"\0\0\0"
            continue
        off, fmt = table[name]
        struct.pack_into(fmt, buf, off, value)
    return buf


def put_runs(buf: bytearray, is_64bit: bool, runs: list[tuple[int, int]], number_of_pages: int | None = None) -> None:
    """Write PHYSICAL_MEMORY_DESCRIPTOR32/64 (spec §7)."""
    total = sum(c for _, c in runs) if number_of_pages is None else number_of_pages
    if is_64bit:
        struct.pack_into("<IIQ", buf, 0x88, len(runs), 0, total)
        for i, (b, c) in enumerate(runs):
            struct.pack_into("<QQ", buf, 0x98 + 16 * i, b, c)
    else:
        struct.pack_into("<II", buf, 0x64, len(runs), total)
        for i, (b, c) in enumerate(runs):
            struct.pack_into("<II", buf, 0x6C + 8 * i, b, c)


def full_dump(
    runs: list[tuple[int, int]], pages: Mapping[int, bytes], *, is_64bit: bool = True, **fields: int
) -> bytes:
    """DumpType 1: header + run table, then each run's pages in order (``pages``: pfn → content)."""
    buf = header(is_64bit, 1, **fields)
    put_runs(buf, is_64bit, runs)
    body = bytearray()
    for base, count in runs:
        for pfn in range(base, base + count):
            body += pages.get(pfn, bytes(PAGE)).ljust(PAGE, b"\0")
    return bytes(buf + body)


def bitmap_bytes(present: list[int], bits: int) -> bytearray:
    bm = bytearray((bits + 7) // 8)
    for pfn in present:
        bm[pfn >> 3] |= 1 << (pfn & 7)
    return bm


def bitmap_dump(
    pages: Mapping[int, bytes],
    bits: int,
    *,
    dump_type: int = 6,
    signature: bytes = b"SDMP",
    is_64bit: bool = True,
    present_override: int | None = None,
    first_page_pad: int = 0,
    **fields: int,
) -> bytes:
    """DumpType 2/5/6: header, 0x38-byte sub-header at the header's end, bitmap, then present pages in PFN order."""
    buf = header(is_64bit, dump_type, **fields)
    hsize = len(buf)
    present = sorted(pages)
    bm = bitmap_bytes(present, bits)
    first = hsize + 0x38 + len(bm) + first_page_pad
    sub = bytearray(0x38)
    sub[0:8] = signature + b"DUMP"
    struct.pack_into("<QQQ", sub, 0x20, first, len(present) if present_override is None else present_override, bits)
    body = b"".join(pages[p].ljust(PAGE, b"\0") for p in present)
    return bytes(buf + sub + bm + bytes(first_page_pad) + body)


def rdmp_dump(ranges: list[tuple[int, int]], pages: Mapping[int, bytes], *, dump_type: int = 8) -> bytes:
    """DumpType 8/9/0xA (spec §11): RDMP header at 0x2000, ranges at 0x2030, pages from FirstPageOffset."""
    buf = header(True, dump_type)
    n = len(ranges) + (1 if dump_type != 0xA else 0)  # kernel range lists end with a PFN-0 entry
    table = bytearray()
    for b, c in ranges:
        table += struct.pack("<QQ", b, c)
    if dump_type != 0xA:
        table += struct.pack("<QQ", 0, 0)
    first = 0x2030 + 16 * n
    first = (first + PAGE - 1) & ~(PAGE - 1)
    meta = first - 0x2040 + 0x20
    sub = bytearray(0x30)
    struct.pack_into("<I4s4sIQQ", sub, 0, 0x40, b"RDMP", b"DUMP", 0, meta, first)
    if dump_type == 0xA:
        struct.pack_into("<IHHQ", sub, 0x20, len(ranges), 0, 0, sum(c for _, c in ranges))
    out = buf + sub + table
    out += bytes(first - len(out))
    for b, c in ranges:
        for pfn in range(b, b + c):
            out += pages.get(pfn, bytes(PAGE)).ljust(PAGE, b"\0")
    return bytes(out)


def page_of(pfn: int, tag: bytes = b"pfn") -> bytes:
    """A recognisable page: the tag and PFN repeated."""
    unit = tag + b":" + pfn.to_bytes(8, "little")
    return (unit * (PAGE // len(unit) + 1))[:PAGE]
