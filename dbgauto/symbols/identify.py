"""Which symbol table belongs to this dump's kernel, and how we know.

A table is used only when identified, one of three ways (``Identification.method``):

- ``rsds``: the image's debug directory (RSDS GUID + age) names the PDB, found in the dump or image store;
- ``image-by-timestamp``: the image was fetched by TimeDateStamp + SizeOfImage (what a small dump's driver
  list gives) and its RSDS record then names the PDB;
- ``kdbg-match``: offline, with no image at all. The KDBG holds absolute addresses of kernel globals; minus
  KernBase they must equal the candidate's RVAs for *every* global given (at least ``MIN_KDBG_MATCHES``).
  Exactly one candidate (by PDB identity) may match; none or several → not identified.

Inputs are plain (ints, mappings, tables), so any dump reader can feed this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dbgauto.symbols.table import SymbolTable

__all__ = [
    "KDBG_GLOBALS",
    "MIN_KDBG_MATCHES",
    "Identification",
    "by_kdbg",
    "by_rsds",
    "kdbg_addresses",
]

KDBG_GLOBALS = (
    "PsLoadedModuleList",
    "PsActiveProcessHead",
    "KiProcessorBlock",
    "MmPfnDatabase",
    "PspCidTable",
    "MmUnloadedDrivers",
    "ObpTypeObjectType",
    "KdDebuggerDataBlock",
)
"""KDDEBUGGER_DATA64 fields (and the dump header's KdDebuggerDataBlock) that are addresses of the globals of
the same name in the kernel image."""

MIN_KDBG_MATCHES = 4


@dataclass(frozen=True, slots=True)
class Identification:
    """A table and how it was tied to the dump; ``evidence`` lists what matched (names or the RSDS id)."""

    table: SymbolTable
    method: str  # "rsds" | "image-by-timestamp" | "kdbg-match"
    evidence: tuple[str, ...] = ()
    rejected: tuple[str, ...] = field(default=())  # candidates ruled out, with the first mismatch


def kdbg_addresses(fields: Mapping[str, int | None], kd_debugger_data_block: int | None) -> dict[str, int]:
    """The globals' absolute addresses from a decoded KDBG's fields plus the header's KdDebuggerDataBlock."""
    out = {n: v for n in KDBG_GLOBALS if (v := fields.get(n))}
    if kd_debugger_data_block:
        out["KdDebuggerDataBlock"] = kd_debugger_data_block
    return out


def _mismatch(table: SymbolTable, kern_base: int, addresses: Mapping[str, int]) -> str | None:
    for name, absolute in addresses.items():
        rva = table.rva(name)
        want = (absolute - kern_base) & 0xFFFFFFFFFFFFFFFF
        if rva is None:
            return f"{name} absent"
        if rva != want:
            return f"{name} at {rva:#x}, KDBG says {want:#x}"
    return None


def by_kdbg(
    kern_base: int, addresses: Mapping[str, int], candidates: Iterable[SymbolTable]
) -> tuple[Identification | None, list[str]]:
    """The one candidate whose RVAs equal every ``address - kern_base``; (None, reasons) otherwise."""
    if len(addresses) < MIN_KDBG_MATCHES:
        return None, [f"only {len(addresses)} KDBG addresses known (need {MIN_KDBG_MATCHES})"]
    matches: dict[str, SymbolTable] = {}
    rejected: list[str] = []
    for t in candidates:
        why = _mismatch(t, kern_base, addresses)
        label = f"{t.module} {t.pdb_id}"
        if why is None:
            matches.setdefault(t.pdb_id or label, t)
        else:
            rejected.append(f"{label}: {why}")
    if len(matches) != 1:
        reason = "no candidate table matches the KDBG" if not matches else f"{len(matches)} tables match the KDBG"
        return None, [reason, *rejected]
    (table,) = matches.values()
    return Identification(table, "kdbg-match", tuple(sorted(addresses)), tuple(rejected)), rejected


def by_rsds(
    guid: str, age: int, candidates: Iterable[SymbolTable], *, via_image: bool = False
) -> Identification | None:
    """The candidate with this PDB identity (from an RSDS record; ``via_image``: of a fetched image)."""
    want = f"{guid.replace('-', '').upper()}{age:X}"
    for t in candidates:
        if t.pdb_id == want:
            return Identification(t, "image-by-timestamp" if via_image else "rsds", (want,))
    return None
