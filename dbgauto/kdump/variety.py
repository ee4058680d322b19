"""Which of Windows' dump varieties a file is, and how sure the file lets us be.

Windows offers five settings (Complete, Kernel, Small, Automatic, Active), but a file records only its
DumpType and a few hints. Kernel and Automatic write identical files; Active is a filtered Complete dump
whose bitmap looks like a Complete one with fewer pages. So a :class:`Variety` says what the file proves,
and ``certain=False`` with an explanation where it is an estimate (spec dump-format.md §14).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dbgauto.kdump.constants import DumpAttribute, DumpType
from dbgauto.vocab.dumptypes import dump_type_layout

# A Complete dump holds every RAM page; below this share of the machine's pages we call it Active.
COMPLETE_SHARE_OF_RUN_TABLE: Final = 0.90
# The bitmap also spans MMIO holes (never stored), so the share is lower for a Complete dump.
COMPLETE_SHARE_OF_BITMAP: Final = 0.75
LIVE_SYSTEM_DUMP: Final = 0x161  # the stop code of a live kernel dump (Task Manager, livekd-style)


@dataclass(frozen=True, slots=True)
class Variety:
    """A variety name as Windows spells it, whether the file proves it, and why."""

    name: str
    certain: bool
    explanation: str
    dump_type_meaning: str


def meaning(dump_type: int | None) -> str:
    if dump_type is None:
        return "absent ('PAGE' filler)"
    return dump_type_layout(dump_type)


def classify(
    dump_type: int | None,
    *,
    pages_present: int | None = None,
    run_table_pages: int | None = None,
    bitmap_bits: int | None = None,
    attributes: int | None = None,
    bugcheck_code: int | None = None,
) -> Variety:
    """The variety of a dump from its DumpType and, for DumpType 5, its page counts and Attributes.

    DumpType 6 is also what Task Manager's "Create live kernel memory dump file" writes (kdmp-parser names
    the value ``LiveKernelBitmapDump``); the header says a dump is live through Attributes bit 4
    (LiveDumpGeneratedDump) or the stop code 0x161 LIVE_SYSTEM_DUMP (dump-format.md §8, §14).
    """
    m = meaning(dump_type)
    if dump_type == DumpType.BITMAP_KERNEL:
        why = _live_reason(attributes, bugcheck_code)
        if why:
            return Variety("Live Kernel Memory Dump", True, f"DumpType 6 and {why}: written while Windows ran", m)
    if dump_type == DumpType.TRIAGE:
        return Variety("Small Memory Dump", True, "DumpType 4 (triage) is only written for small memory dumps", m)
    if dump_type in (DumpType.BITMAP_KERNEL, DumpType.SUMMARY):
        return Variety(
            "Kernel or Automatic Memory Dump",
            False,
            f"DumpType {dump_type} holds kernel memory; Kernel and Automatic settings write identical files "
            "(they differ only in how Windows sizes the paging file)",
            m,
        )
    if dump_type == DumpType.FULL:
        return Variety("Complete Memory Dump", True, "DumpType 1 stores every page of the run table", m)
    if dump_type == DumpType.BITMAP_FULL:
        return _complete_or_active(m, pages_present, run_table_pages, bitmap_bits, attributes)
    if dump_type == DumpType.HEADER:
        return Variety("Header-only Dump", True, "DumpType 3 carries the header and no memory", m)
    if dump_type == DumpType.KERNEL_RANGE:
        return Variety("Kernel Range Dump", True, "DumpType 8: WinDbgX `.dump /k` (kernel memory ranges)", m)
    if dump_type == DumpType.KERNEL_USER_RANGE:
        return Variety(
            "Kernel and User Range Dump", True, "DumpType 9: WinDbgX `.dump /ka` (kernel and user memory ranges)", m
        )
    if dump_type == DumpType.COMPLETE_RANGE:
        return Variety("Complete Range Dump", True, "DumpType 0xA: WinDbgX `.dump /f` (all physical memory ranges)", m)
    return Variety("Unknown", False, f"DumpType {dump_type!r} is not one Windows writes for a dump file", m)


def _live_reason(attributes: int | None, bugcheck_code: int | None) -> str:
    """Which header field proves a live dump, or "" when none does."""
    reasons = []
    if attributes is not None and attributes & DumpAttribute.LIVE_DUMP_GENERATED_DUMP:
        reasons.append("Attributes has LiveDumpGeneratedDump (bit 4) set")
    if bugcheck_code == LIVE_SYSTEM_DUMP:
        reasons.append("BugCheckCode is 0x161 LIVE_SYSTEM_DUMP")
    return " and ".join(reasons)


def _complete_or_active(
    m: str, present: int | None, run_pages: int | None, bitmap_bits: int | None, attributes: int | None
) -> Variety:
    filtered = attributes is not None and bool(attributes & DumpAttribute.FILTER_DUMP_FILE)
    if run_pages:
        total, threshold, basis = run_pages, COMPLETE_SHARE_OF_RUN_TABLE, "the run table's NumberOfPages"
    elif bitmap_bits:
        total, threshold, basis = bitmap_bits, COMPLETE_SHARE_OF_BITMAP, "the bitmap size"
    else:
        total, threshold, basis = None, 0.0, ""
    if total and present is not None:
        share = present / total
        facts = f"{present:#x} of {total:#x} pages present ({share:.0%} of {basis})"
        active = share < threshold or filtered
    else:
        facts = "page counts unknown"
        active = filtered
    if filtered:
        facts += "; Attributes has FilterDumpFile set"
    name = "Active Memory Dump" if active else "Complete Memory Dump"
    why = (
        f"heuristic: DumpType 5 is written for both Complete and Active memory dumps; {facts}, "
        f"so estimated {name.split()[0]} (threshold {threshold:.0%})"
    )
    return Variety(name, False, why, m)
