"""The debug directory's CodeView (RSDS) record: the GUID, age and PDB name that identify an image's symbols."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dbgauto.pe import layouts as L

if TYPE_CHECKING:
    from dbgauto.pe.image import PeImage

MAX_DEBUG_ENTRIES: Final = 32
MAX_CV_SIZE: Final = 0x1000


@dataclass(frozen=True, slots=True)
class CodeView:
    """An RSDS record. ``guid`` is printed as Microsoft prints GUIDs; ``symbol_key`` is the symbol-server key."""

    guid: str
    age: int
    pdb_name: str

    @property
    def symbol_key(self) -> str:
        """GUID without dashes, upper-case, followed by the age in hex (the symbol server's directory name)."""
        return f"{self.guid.replace('-', '').upper()}{self.age:X}"


def read_codeview(img: PeImage) -> CodeView | None:
    """The first RSDS record of the debug directory, or None (absent, paged out or malformed → a warning)."""
    d = img.directory(L.DIR_DEBUG)
    if d is None:
        return None
    n = min(d.size // L.DEBUG_DIRECTORY.size, MAX_DEBUG_ENTRIES)
    raw = img.read_rva(d.rva, n * L.DEBUG_DIRECTORY.size)
    if raw is None:
        img.warnings.append(f"debug directory at rva {d.rva:#x} is not readable")
        return None
    for i in range(n):
        e = L.DEBUG_DIRECTORY.unpack(raw, i * L.DEBUG_DIRECTORY.size)
        if e["type"] != L.DEBUG_TYPE_CODEVIEW:
            continue
        size = e["size_of_data"]
        if not L.CV_RSDS.size < size <= MAX_CV_SIZE:
            img.warnings.append(f"CodeView record size {size:#x} is implausible")
            return None
        cv = img.read_rva(e["address_of_raw_data"], size) if e["address_of_raw_data"] else None
        if cv is None:
            img.warnings.append(f"CodeView record at rva {e['address_of_raw_data']:#x} is not readable")
            return None
        h = L.CV_RSDS.unpack(cv)
        if h["signature"] != b"RSDS":
            img.warnings.append(f"CodeView record signature {bytes(h['signature'])!r} is not RSDS")
            return None
        d4 = bytes(h["data4"])
        guid = f"{h['data1']:08X}-{h['data2']:04X}-{h['data3']:04X}-{d4[:2].hex().upper()}-{d4[2:].hex().upper()}"
        name = bytes(cv[L.CV_RSDS.size :]).split(b"\0", 1)[0].decode("utf-8", "replace")
        return CodeView(guid=guid, age=h["age"], pdb_name=name)
    return None
