"""A small memory dump's sections as :class:`KernelParts`: which KiProcessorBlock entry the PRCB copy is, the
current thread and process addresses, and a virtual view over every copy.

The file records where each copy sits but not, for the PRCB, thread and process, the address it was copied from;
those come from the KDBG's offsets and the data blocks, never from a guess.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dbgauto.errors import PageNotPresentError
from dbgauto.kernel.kdbg import KdbgBlock
from dbgauto.kernel.parts import KernelParts

if TYPE_CHECKING:
    from dbgauto.kdump.header import DumpHeader
    from dbgauto.kdump.reader import KernelDump
    from dbgauto.kdump.triage import TriageDump
    from dbgauto.kdump.triage_sections import KdDebuggerData
    from dbgauto.kdump.triage_view import VirtualView

__all__ = ["CopiesMemory", "kernel_view", "locate_copies", "parts_from_triage", "processor_number", "small_dump_parts"]

MAX_PROCESSORS = 4096


class CopiesMemory:
    """A small dump's virtual view as a :class:`~dbgauto.kernel.parts.VirtualReader` (None when absent); the view
    (a sorted index of the data blocks) is built on the first read: facts of most dumps never need it."""

    def __init__(self, make_view: Callable[[], VirtualView]) -> None:
        self._make_view = make_view
        self._view: VirtualView | None = None

    @property
    def view(self) -> VirtualView:
        if self._view is None:
            self._view = self._make_view()
        return self._view

    def read(self, va: int, size: int) -> bytes | None:
        try:
            return self.view.read(va, size)
        except PageNotPresentError:
            return None


def processor_number(tri: TriageDump) -> int | None:
    """The crashing processor: the PRCB copy's Number field (KDBG OffsetPrcbNumber; u16 on x64, u8 on x86)."""
    k, prcb = tri.kdbg, tri.prcb
    off = k.get("OffsetPrcbNumber") if k is not None else None
    if prcb is None or not off or off + 2 > len(prcb):
        return None
    return int(struct.unpack_from("<H" if tri.is_64bit else "<B", prcb, off)[0])


def _read_blocks(tri: TriageDump, va: int, size: int) -> bytes:
    """``size`` bytes at ``va`` from the data blocks: a block starting exactly there is used directly (Windows
    stores KiProcessorBlock and each PRCB as blocks of their own), else the sorted index is asked."""
    t = tri.block_table
    i = t.first_at(va)
    if i is not None and t.sizes[i] >= size:
        return bytes(tri.buffer[t.offsets[i] : t.offsets[i] + size])
    return tri.blocks_view.read(va, size)


def _processor_blocks(tri: TriageDump, k: KdDebuggerData, n_cpus: int) -> list[int]:
    """KiProcessorBlock as far as the data blocks hold it."""
    ps = tri.pointer_size
    array_va = k.get("KiProcessorBlock")
    if not array_va or not 0 < n_cpus <= MAX_PROCESSORS:
        return []
    try:
        raw = _read_blocks(tri, array_va, n_cpus * ps)
        return list(struct.unpack(f"<{n_cpus}{'Q' if ps == 8 else 'I'}", raw))
    except PageNotPresentError:
        out = []
        for i in range(n_cpus):  # a partial array: as many entries as are present
            try:
                out.append(int.from_bytes(_read_blocks(tri, array_va + i * ps, ps), "little"))
            except PageNotPresentError:
                break
        return out


def _find_prcb(tri: TriageDump, candidates: list[int]) -> int | None:
    """Which KiProcessorBlock entry is the copied PRCB: by its processor number, confirmed by data-block bytes."""
    prcb = tri.prcb
    assert prcb is not None
    number = processor_number(tri)
    probe = min(len(prcb), 0x200)
    if number is not None and number < len(candidates):
        va = candidates[number]
        try:
            if _read_blocks(tri, va, probe) == prcb[:probe]:
                return va
        except PageNotPresentError:
            return va  # the array says so; there is simply no data-block copy to confirm it with
    for va in candidates:  # fall back to comparing bytes
        try:
            if _read_blocks(tri, va, probe) == prcb[:probe]:
                return va
        except PageNotPresentError:
            continue
    return None


def locate_copies(tri: TriageDump, n_cpus: int) -> tuple[list[int], int | None, int | None, int | None]:
    """(KiProcessorBlock entries, PRCB VA, thread VA, process VA); None where not derivable."""
    k = tri.kdbg
    if tri.prcb is None or k is None:
        return [], None, None, None
    ps = tri.pointer_size
    blocks = _processor_blocks(tri, k, n_cpus)
    prcb_va = _find_prcb(tri, blocks)
    thread_va = process_va = None
    off_thread = k.get("OffsetPrcbCurrentThread")
    if off_thread and off_thread + ps <= len(tri.prcb):
        thread_va = int.from_bytes(tri.prcb[off_thread : off_thread + ps], "little") or None
    off_proc = k.get("OffsetKThreadApcProcess")
    if tri.thread is not None and off_proc and off_proc + ps <= len(tri.thread):
        process_va = int.from_bytes(tri.thread[off_proc : off_proc + ps], "little") or None
    return blocks, prcb_va, thread_va, process_va


def small_dump_parts(dump: KernelDump) -> KernelParts:
    """The parts of an open small memory dump (its sections, located)."""
    return parts_from_triage(dump.triage, header=dump.header)


def parts_from_triage(tri: TriageDump, *, header: DumpHeader | None = None) -> KernelParts:
    """The parts of a parsed small dump; ``header`` is decoded from its buffer when not given."""
    if header is None:
        from dbgauto.kdump.header import DumpHeader

        header = DumpHeader.parse(tri.buffer[: 0x2000 if tri.is_64bit else 0x1000], tri.path)
    h = header
    blocks, prcb_va, thread_va, process_va = locate_copies(tri, h.number_processors or 0)
    copies = tri.located_copies(prcb=prcb_va, thread=thread_va, process=process_va)
    k = tri.kdbg
    kdbg = None if k is None else KdbgBlock(va=k.address or 0, raw=k.raw, fields=dict(k.fields), encoded=False)
    return KernelParts(
        header=h,
        is_64bit=tri.is_64bit,
        machine=tri.machine,
        context=tri.context if tri.context is not None else h.context,
        kdbg=kdbg,
        processor=processor_number(tri),
        processor_blocks=blocks,
        prcb_va=prcb_va,
        prcb=tri.prcb,
        thread_va=thread_va,
        thread=tri.thread,
        process_va=process_va,
        process=tri.process,
        top_of_stack=tri.top_of_stack,
        stack=tri.stack,
        stack_base=None,
        drivers=list(tri.drivers),
        unloaded_drivers=list(tri.unloaded_drivers) if tri.header.unloaded_drivers_offset else None,
        mm=dict(tri.mm.fields) if tri.mm is not None else None,
        warnings=list(tri.warnings),
        memory=CopiesMemory(lambda: tri.blocks_view.with_copies(copies)),
    )


def kernel_view(p: KernelParts) -> dict[str, Any]:
    """What the kernel layer establishes from a small dump's copies, by name (for ``info``'s triage section)."""
    from dbgauto.kernel.identity import identity_of
    from dbgauto.kernel.stackscan import ModuleIndex, scan_stack

    who = identity_of(p)
    return {
        "prcb_address": p.prcb_va,
        "thread_address": p.thread_va,
        "process_address": p.process_va,
        "process_name": who.process_name,
        "pid": who.pid,
        "tid": who.tid,
        "stack_scan": scan_stack(p.stack, p.top_of_stack, ModuleIndex(p.drivers), p.pointer_size),
    }
