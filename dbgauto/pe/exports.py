"""The export directory: names and RVAs of exported functions (symbol names for frames when no PDB is at hand)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dbgauto.pe import layouts as L
from dbgauto.pe.image import read_cstring

if TYPE_CHECKING:
    from dbgauto.pe.image import PeImage

MAX_EXPORTS: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class Export:
    ordinal: int
    rva: int
    name: str | None
    forwarder: str | None = None


def read_exports(img: PeImage) -> list[Export]:
    """Every export (by ordinal), with its name when it has one; bounded to ``MAX_EXPORTS`` entries."""
    d = img.directory(L.DIR_EXPORT)
    if d is None:
        return []
    raw = img.read_rva(d.rva, L.EXPORT_DIRECTORY.size)
    if raw is None:
        img.warnings.append(f"export directory at rva {d.rva:#x} is not readable")
        return []
    e = L.EXPORT_DIRECTORY.unpack(raw)
    nfun, nnames = e["number_of_functions"], e["number_of_names"]
    if nfun > MAX_EXPORTS or nnames > nfun:
        img.warnings.append(f"export directory claims {nfun} functions / {nnames} names; ignored")
        return []
    funcs = img.read_rva(e["address_of_functions"], 4 * nfun) if nfun else b""
    names = img.read_rva(e["address_of_names"], 4 * nnames) if nnames else b""
    ords = img.read_rva(e["address_of_name_ordinals"], 2 * nnames) if nnames else b""
    if funcs is None or names is None or ords is None:
        img.warnings.append("export tables are not readable")
        return []
    fv = memoryview(funcs).cast("I") if nfun else []
    by_index: dict[int, str] = {}
    if nnames:
        nv = memoryview(names).cast("I")
        ov = memoryview(ords).cast("H")
        for i in range(nnames):
            name = read_cstring(img, nv[i])
            if name is not None and ov[i] < nfun:
                by_index.setdefault(ov[i], name)
    out = []
    for i in range(nfun):
        rva = fv[i]
        if not rva:
            continue
        fwd = read_cstring(img, rva) if d.rva <= rva < d.rva + d.size else None
        out.append(Export(ordinal=e["base"] + i, rva=rva, name=by_index.get(i), forwarder=fwd))
    return out
