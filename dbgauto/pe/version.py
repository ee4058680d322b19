"""The version resource (RT_VERSION → VS_VERSIONINFO): fixed file/product versions and the StringFileInfo strings
(CompanyName, FileVersion, ProductName, ...), the columns BlueScreenView shows for each driver.

Block format (Microsoft, "VS_VERSIONINFO", "StringFileInfo", "String"): each block is wLength, wValueLength,
wType, a NUL-terminated UTF-16 key, padding to 4, the value, padding to 4, then child blocks up to wLength.
Every walk is bounded by the resource's size and a maximum block count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from dbgauto.pe import layouts as L

if TYPE_CHECKING:
    from dbgauto.pe.image import PeImage

MAX_RESOURCE_ENTRIES: Final = 4096
MAX_VERSION_SIZE: Final = 0x10000
MAX_BLOCKS: Final = 512


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """``strings`` holds the first StringTable's String values by key; versions are ``a.b.c.d`` or None."""

    file_version: str | None
    product_version: str | None
    strings: dict[str, str] = field(default_factory=dict)

    @property
    def company_name(self) -> str | None:
        return self.strings.get("CompanyName")

    @property
    def product_name(self) -> str | None:
        return self.strings.get("ProductName")

    @property
    def file_version_string(self) -> str | None:
        return self.strings.get("FileVersion")


def _first_entry(img: PeImage, base: int, off: int, want_id: int | None) -> int | None:
    """OffsetToData of the entry with id ``want_id`` (or the first entry) of the directory at ``base + off``."""
    raw = img.read_rva(base + off, L.RESOURCE_DIRECTORY.size)
    if raw is None:
        return None
    h = L.RESOURCE_DIRECTORY.unpack(raw)
    n = h["number_of_named_entries"] + h["number_of_id_entries"]
    if n > MAX_RESOURCE_ENTRIES:
        img.warnings.append(f"resource directory claims {n} entries")
        return None
    entries = img.read_rva(base + off + L.RESOURCE_DIRECTORY.size, n * L.RESOURCE_DIRECTORY_ENTRY.size)
    if entries is None:
        return None
    for i in range(n):
        e = L.RESOURCE_DIRECTORY_ENTRY.unpack(entries, i * L.RESOURCE_DIRECTORY_ENTRY.size)
        if want_id is None or (not e["name"] & 0x80000000 and e["name"] == want_id):
            return e["offset_to_data"]
    return None


def _version_bytes(img: PeImage) -> bytes | None:
    d = img.directory(L.DIR_RESOURCE)
    if d is None:
        return None
    off: int | None = 0
    for level, want in enumerate((L.RT_VERSION, None, None)):
        off = _first_entry(img, d.rva, off, want)
        if off is None:
            return None
        is_dir = bool(off & 0x80000000)
        if is_dir != (level < 2):
            img.warnings.append("resource tree for RT_VERSION is not three levels deep")
            return None
        off &= 0x7FFFFFFF
        if off >= d.size:
            img.warnings.append(f"resource entry offset {off:#x} is outside the resource directory")
            return None
    raw = img.read_rva(d.rva + off, L.RESOURCE_DATA_ENTRY.size)
    if raw is None:
        return None
    de = L.RESOURCE_DATA_ENTRY.unpack(raw)
    if not 0 < de["size"] <= MAX_VERSION_SIZE:
        img.warnings.append(f"version resource size {de['size']:#x} is implausible")
        return None
    data = img.read_rva(de["rva"], de["size"])
    return None if data is None else bytes(data)


def _align4(x: int) -> int:
    return (x + 3) & ~3


def _blocks(buf: bytes, start: int, end: int, budget: list[int]):
    """Yield (key, value_start, value_length, type, children_start, block_end) for blocks in [start, end)."""
    p = start
    while p + L.VERSION_BLOCK.size <= end and budget[0] > 0:
        budget[0] -= 1
        h = L.VERSION_BLOCK.unpack(buf, p)
        length = h["length"]
        if length < L.VERSION_BLOCK.size:
            return
        bend = min(p + length, end)
        k = p + L.VERSION_BLOCK.size
        kend = k
        while kend + 1 < bend and buf[kend : kend + 2] != b"\0\0":
            kend += 2
        key = buf[k:kend].decode("utf-16-le", "replace")
        vstart = _align4(kend + 2)
        vbytes = h["value_length"] * (2 if h["type"] == 1 else 1)
        children = _align4(vstart + vbytes)
        yield key, vstart, h["value_length"], h["type"], children, bend
        p = _align4(p + length)


def parse_version_block(buf: bytes) -> VersionInfo | None:
    """Decode a VS_VERSIONINFO blob (the RT_VERSION resource's bytes)."""
    budget = [MAX_BLOCKS]
    top = next(_blocks(buf, 0, len(buf), budget), None)
    if top is None or top[0] != "VS_VERSION_INFO":
        return None
    _, vstart, vlen, _, children, bend = top
    fv = pv = None
    if vlen >= L.FIXED_FILE_INFO.size and vstart + L.FIXED_FILE_INFO.size <= len(buf):
        f = L.FIXED_FILE_INFO.unpack(buf, vstart)
        if f["signature"] == L.FIXED_FILE_INFO_SIGNATURE:
            fv = _ver(f["file_version_ms"], f["file_version_ls"])
            pv = _ver(f["product_version_ms"], f["product_version_ls"])
    strings: dict[str, str] = {}
    for key, _vs, _vl, _t, ch, be in _blocks(buf, children, bend, budget):
        if key != "StringFileInfo":
            continue
        for _tkey, _vs2, _vl2, _t2, ch2, be2 in _blocks(buf, ch, be, budget):
            for skey, svs, _svl, _st, _sch, sbe in _blocks(buf, ch2, be2, budget):
                text = buf[svs:sbe].decode("utf-16-le", "replace") if svs < sbe else ""
                strings.setdefault(skey, text.split("\0", 1)[0])
            break  # the first StringTable (language) is the one tools show
    return VersionInfo(file_version=fv, product_version=pv, strings=strings)


def _ver(ms: int, ls: int) -> str:
    return f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"


def read_version_info(img: PeImage) -> VersionInfo | None:
    """The image's version resource, or None when it has none (or it is unreadable → a warning)."""
    data = _version_bytes(img)
    return None if data is None else parse_version_block(data)
