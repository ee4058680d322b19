"""Walk a large dump's kernel once and gather what a small memory dump of its crash carries: the parts.

``walk_kernel(dump)`` reads the KDBG (decoded), finds the crashing processor, and copies its KPRCB, current
ETHREAD / EPROCESS and kernel stack, walks PsLoadedModuleList and MmUnloadedDrivers, and reads the MM triage
values. Conversion (which adds the data blocks) and analysis (facts) both start from the :class:`KernelParts`.

Rules (each checked against the Windows-written sample ``../shared/dumps/triage_x64.dmp``):

* **Crashing processor**: the processor whose current thread's stack range ``[StackLimit, StackBase)`` holds the
  header CONTEXT's stack pointer (the bugcheck context is a frame on the crashing thread's stack). Fallback: the
  processor whose saved context (``*(KPRCB + OffsetPrcbContext)``) has the header's SP and PC; a one-processor
  machine is processor 0. Anything else is a ConversionError (never a guess).
* **TopOfStack** is the stack pointer of that processor's saved context (``*(KPRCB + OffsetPrcbContext)``, the
  register state KeBugCheckEx saved): in the sample it is 0xFFFF850429890EE8, below the header RSP, and the copy
  starts with KeBugCheckEx's own frame. When that context is absent or off the thread's stack, the header SP.
* **Stack copy**: ``[TopOfStack, StackBase)`` (thread StackBase via KDBG OffsetKThreadStackBase), at most
  MAX_STACK_BYTES (16 KiB, the documented small-dump stack limit) kept from TopOfStack upwards; absent pages end
  the copy (warning).
* **Drivers**: PsLoadedModuleList in list order, at most MAX_DRIVERS entries, stopping at the head, at a repeated
  entry (loop) or an unreadable one (warning). Name = FullDllName (full NT path, as the sample's string pool has
  it). Base/size from the entry; TimeDateStamp/CheckSum from the live entry (Windows 10+ x64: 0x9C/0x78; older
  x64 and 32-bit: the debugger-side offsets), replaced by the image's PE header values when its header page is
  present and agrees with the entry on SizeOfImage.
* **Unloaded drivers**: ``*MmUnloadedDrivers`` (array of MI_UNLOADED_DRIVERS entries), newest first from
  index ``*MmLastUnloadedDriver - 1`` backwards around the circle, skipping empty slots (the sample's order:
  dam.sys, WdBoot.sys, hwpolicy.sys, mcupdate.dll).
* **MM triage info**: Version 1, Size, then the values of the Mm* globals the KDBG points to (MmSpecialPoolTag,
  MmTriageActionTaken, KernelVerifier, MmMaximumNonPagedPoolInBytes, MmAllocatedNonPagedPool,
  MmSizeOfPagedPoolInBytes, MmTotalCommittedPages, MmPeakCommitment, MmTotalCommitLimitMaximum); a null pointer
  or an absent page gives 0. MmVerifyDriverLevel and PagedPoolAllocated have no KDBG pointer: 0. (The 19041
  sample has zeros after Version/Size.)

ARM64 (MachineImageType 0xAA64) is walked by the same rules; what differs, and why:

* **Memory**: the dump's own translation (AArch64 tables under the header's DirectoryTableBase,
  :mod:`dbgauto.kdump.paging_arm64`); pointers are 8 bytes, kernel VAs canonical like x64's.
* **CONTEXT**: the 0x390-byte ARM64 CONTEXT (Sp 0x100, Pc 0x108; kd-structures.md §6), both in the header and
  behind ``KPRCB + OffsetPrcbContext``; the crashing processor is found from its Sp as on x64.
* **KDBG**: read plain. Whether an ARM64 kernel encodes it is not established by any public source found: the
  public decompilations of KdEncodeDataBlock / KdCopyDataBlock / KdDecodeDataBlock are of x64 ntoskrnl, and
  they show KeBugCheck2 calling KdDecodeDataBlock before the dump is written, so a bug-check dump carries the
  block decoded anyway. An ARM64 block that is not plain is decoded only with keys the caller passes (the x64
  formula; symbols give KiWaitNever / KiWaitAlways / KdpDataBlockEncoded); the symbol-less key scan looks for
  x64 instruction encodings (``cmp byte ptr [rip+X], 0``, RIP-relative loads) that A64 code cannot contain, so
  it is not run on ARM64 nt images and such a block is a ConversionError that says so.
* **Drivers**: the live ``_KLDR_DATA_TABLE_ENTRY`` of Windows 10+ x64 (DllBase 0x30, SizeOfImage 0x40,
  FullDllName 0x48, BaseDllName 0x58, CheckSum 0x78, TimeDateStamp 0x9C). Windows on ARM64 exists only from
  Windows 10, and the structure holds only LIST_ENTRYs, pointers, UNICODE_STRINGs, ULONGs and USHORTs, whose
  sizes and natural alignment are the same under the ARM64 and x64 LLP64 ABIs (8-byte pointers and
  ULONG64s aligned to 8, ULONG to 4, USHORT to 2), so every field lands at the same offset.
  PE headers (PE32+) are read as on x64.
* **Unloaded drivers, MM info, data blocks**: the same KDBG pointers and the same 64-bit layouts.
* **Output**: a Windows-written ARM64 small dump (build 22000; its TRIAGE_DUMP64 as rizin's test suite prints it,
  ``test/db/formats/dmp/dmp``) has the x64 layout: TRIAGE_DUMP64 at 0x2000, ContextOffset 0x348, MmOffset 0x2080,
  a 0x380-byte KDBG copy, 0x90-byte driver entries, the same section order; TopOfStack there equals the header
  CONTEXT's Sp (the stack copy runs to the thread's StackBase), which the rule above gives whenever the saved
  context is the header's or absent. tests/convert/test_arm64.py checks the written layout against those values.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING, Final

from dbgauto.errors import ConversionError
from dbgauto.kdump.constants import PAGE_SIZE, Machine
from dbgauto.kdump.records import LoadedDriver, UnloadedDriver
from dbgauto.kdump.structs.context import CpuContext, context_layout, parse_context
from dbgauto.kdump.structs.kd import (
    KLDR_DATA_TABLE_ENTRY32,
    KLDR_DATA_TABLE_ENTRY64,
    KLDR_DATA_TABLE_ENTRY_LIVE_WIN10_X64,
    MI_UNLOADED_DRIVERS,
    UNLOADED_DRIVERS32,
    UNLOADED_DRIVERS64,
    split_unicode_string,
)
from dbgauto.kernel.kdbg import KdbgKeys, read_kdbg
from dbgauto.kernel.memory import DumpMemory
from dbgauto.kernel.parts import KernelParts
from dbgauto.util.layout import Layout

if TYPE_CHECKING:
    from dbgauto.kdump.header import DumpHeader
    from dbgauto.kdump.reader import KernelDump

log = logging.getLogger(__name__)

__all__ = ["walk_kernel"]

MAX_STACK_BYTES: Final = 0x4000
MAX_DRIVERS: Final = 4096
MAX_PROCESSORS: Final = 2048
MAX_NAME_BYTES: Final = 0x1000
WIN10_FIRST_BUILD: Final = 10240
WALKABLE: Final = frozenset({Machine.AMD64, Machine.I386, Machine.ARM64})
UNLOADED_NAME_BYTES: Final = 0x200


def _need(fields: dict[str, int], names: tuple[str, ...], source: str) -> None:
    missing = [n for n in names if not fields.get(n)]
    if missing:
        raise ConversionError(f"{source}: the KDBG lacks {', '.join(missing)}")


class _Collector:
    def __init__(self, dump: KernelDump, mem: DumpMemory, keys: KdbgKeys | None) -> None:
        self.dump = dump
        self.src = str(dump.path)
        self.mem = mem
        self.keys = keys
        self.warnings: list[str] = []
        self.ps = self.mem.pointer_size

    def warn(self, msg: str) -> None:
        log.debug("%s: %s", self.src, msg)  # the caller shows ConvertResult.warnings
        self.warnings.append(msg)

    # -- essentials ----------------------------------------------------------------------------------------

    def run(self) -> KernelParts:
        dump, mem = self.dump, self.mem
        h = dump.header
        if not dump.has_physical_memory:
            raise ConversionError(f"{self.src}: DumpType {int(dump.dump_type)} holds no physical memory to convert")
        if h.context is None:
            raise ConversionError(f"{self.src}: the header holds no CONTEXT of the crashing processor")
        nt_base, nt_size = self._nt_from_module_list(h)
        if dump.machine == Machine.ARM64:
            nt_base = nt_size = None  # the key scan reads x64 instructions: meaningless in A64 code (module doc)
        try:
            kdbg = read_kdbg(
                mem.read,
                None if h.kd_debugger_data_block is None else mem.canon(h.kd_debugger_data_block),
                keys=self.keys,
                nt_base=nt_base,
                nt_size=nt_size,
                source=self.src,
            )
        except ConversionError as e:
            if dump.machine != Machine.ARM64 or self.keys is not None or "OwnerTag" not in str(e):
                raise
            raise ConversionError(
                f"{self.src}: ARM64 KDBG at {h.kd_debugger_data_block:#x} has no 'KDBG' OwnerTag; an encoded ARM64 "
                "block is decoded only with KiWaitNever/KiWaitAlways/KdpDataBlockEncoded from symbols (no "
                "symbol-less key scan exists for A64 code)"
            ) from None
        f = kdbg.fields
        _need(f, ("KiProcessorBlock", "SizePrcb", "SizeEThread", "SizeEProcess", "OffsetKThreadApcProcess"), self.src)
        prcbs = self._processor_blocks(h, f)
        cpu, thread_va, stack_range = self._crashing_processor(h.context, prcbs, f)
        prcb_va = prcbs[cpu]
        prcb = mem.read(prcb_va, f["SizePrcb"])
        if prcb is None:
            raise ConversionError(f"{self.src}: KPRCB of processor {cpu} at {prcb_va:#x} is not in the dump")
        thread = mem.read(thread_va, f["SizeEThread"])
        if thread is None:
            raise ConversionError(f"{self.src}: current thread of processor {cpu} at {thread_va:#x} is not in the dump")
        process_va = mem.pointer(thread_va + f["OffsetKThreadApcProcess"])
        process = mem.read(process_va, f["SizeEProcess"]) if process_va else None
        if process is None:
            self.warn(f"process of thread {thread_va:#x} ({(process_va or 0):#x}) is not in the dump; no EPROCESS copy")
        top, stack, base = self._stack(h.context, prcb_va, f, stack_range)
        return KernelParts(
            header=h,
            is_64bit=dump.is_64bit,
            machine=dump.machine,
            context=h.context,
            kdbg=kdbg,
            processor=cpu,
            processor_blocks=prcbs,
            prcb_va=prcb_va,
            prcb=prcb,
            thread_va=thread_va,
            thread=thread,
            process_va=process_va if process is not None else None,
            process=process,
            top_of_stack=top,
            stack=stack,
            stack_base=base,
            drivers=self._drivers(h, f),
            unloaded_drivers=self._unloaded(f),
            mm=self._mm(f),
            warnings=self.warnings,
            memory=mem,
        )

    def _nt_from_module_list(self, h: DumpHeader) -> tuple[int | None, int | None]:
        """nt's base and size from the first PsLoadedModuleList entry (needed before the KDBG is decoded)."""
        if not h.ps_loaded_module_list:
            return None, None
        first = self.mem.pointer(self.mem.canon(h.ps_loaded_module_list))
        if not first:
            return None, None
        lay = self._kldr_layout(h)
        raw = self.mem.read(first, lay.size)
        if raw is None:
            return None, None
        v = lay.unpack(raw)
        return v["DllBase"] or None, v["SizeOfImage"] or None

    def _processor_blocks(self, h: DumpHeader, f: dict[str, int]) -> list[int]:
        n = h.number_processors or 0
        if not 0 < n <= MAX_PROCESSORS:
            raise ConversionError(f"{self.src}: NumberProcessors {n} is not plausible")
        arr_va = self.mem.canon(f["KiProcessorBlock"])
        raw = self.mem.read(arr_va, n * self.ps)
        if raw is None:
            raise ConversionError(f"{self.src}: KiProcessorBlock at {arr_va:#x} is not in the dump")
        values = list(struct.unpack(f"<{n}{'Q' if self.ps == 8 else 'I'}", raw))
        if not any(values):
            raise ConversionError(f"{self.src}: KiProcessorBlock at {arr_va:#x} holds no KPRCB pointer")
        return values

    def _thread_stack(self, thread_va: int, f: dict[str, int]) -> tuple[int, int] | None:
        off_limit, off_base = f.get("OffsetKThreadStackLimit"), f.get("OffsetKThreadStackBase")
        if not off_limit or not off_base:
            return None
        limit, base = self.mem.pointer(thread_va + off_limit), self.mem.pointer(thread_va + off_base)
        if not limit or not base or not limit < base:
            return None
        return limit, base

    def _saved_context(self, prcb_va: int, f: dict[str, int]) -> CpuContext | None:
        """The register state a processor saved in its PRCB (KPRCB.Context pointer, else ProcessorState)."""
        lay = context_layout(self.dump.machine)
        places: list[int | None] = []  # the KPRCB.Context pointer first, then ProcessorState.ContextFrame
        if f.get("OffsetPrcbContext"):
            places.append(self.mem.pointer(prcb_va + f["OffsetPrcbContext"]))
        if f.get("OffsetPrcbProcStateContext"):
            places.append(prcb_va + f["OffsetPrcbProcStateContext"])
        for va in places:
            raw = self.mem.read(va, lay.size) if va else None
            if raw is not None:
                ctx = parse_context(self.dump.machine, raw)
                if ctx.sp:
                    return ctx
        return None

    def _crashing_processor(
        self, ctx: CpuContext, prcbs: list[int], f: dict[str, int]
    ) -> tuple[int, int, tuple[int, int] | None]:
        off_cur = f.get("OffsetPrcbCurrentThread")
        if not off_cur:
            raise ConversionError(f"{self.src}: the KDBG lacks OffsetPrcbCurrentThread")
        sp, pc = self.mem.canon(ctx.sp), self.mem.canon(ctx.pc)
        threads: dict[int, int] = {}
        unreadable: list[str] = []
        for cpu, prcb in enumerate(prcbs):
            if not prcb:
                continue
            thread = self.mem.pointer(prcb + off_cur)
            if not thread:
                unreadable.append(f"processor {cpu}: KPRCB at {prcb:#x} not in the dump")
                continue
            threads[cpu] = thread
            if not self.mem.present(thread):
                unreadable.append(f"processor {cpu}: current thread at {thread:#x} not in the dump")
            rng = self._thread_stack(thread, f)
            if rng is not None and rng[0] <= sp < rng[1]:
                return cpu, thread, rng
        for cpu, thread in threads.items():
            saved = self._saved_context(prcbs[cpu], f)
            if saved is not None and saved.sp == sp and saved.pc == pc:
                return cpu, thread, self._thread_stack(thread, f)
        if len(prcbs) == 1 and 0 in threads:
            self.warn("one processor and no stack match: processor 0 taken as the crashing one")
            return 0, threads[0], self._thread_stack(threads[0], f)
        why = f" ({'; '.join(unreadable[:4])})" if unreadable else ""
        raise ConversionError(
            f"{self.src}: cannot tell the crashing processor: no current thread's stack holds the bugcheck "
            f"context's SP {sp:#x}{why}"
        )

    def _stack(
        self, ctx: CpuContext, prcb_va: int, f: dict[str, int], rng: tuple[int, int] | None
    ) -> tuple[int, bytes | None, int | None]:
        sp = self.mem.canon(ctx.sp)
        top = sp
        saved = self._saved_context(prcb_va, f)
        if saved is not None:
            ssp = self.mem.canon(saved.sp)
            if (rng is not None and rng[0] <= ssp < rng[1]) or (rng is None and sp - 0x10000 <= ssp <= sp):
                top = ssp
        base = rng[1] if rng is not None else (top | (PAGE_SIZE - 1)) + 1
        if rng is None:
            self.warn(f"thread stack bounds unknown; stack copied to the end of SP's page {base:#x}")
        size = base - top
        if size > MAX_STACK_BYTES:
            self.warn(f"stack of {size:#x} bytes cut to {MAX_STACK_BYTES:#x} from TopOfStack {top:#x}")
            size = MAX_STACK_BYTES
        data = self.mem.read_prefix(top, size)
        if not data:
            self.warn(f"kernel stack at {top:#x} is not in the dump; no stack copy")
            return top, None, base
        if len(data) < size:
            self.warn(f"kernel stack at {top:#x}: only {len(data):#x} of {size:#x} bytes are in the dump")
        return top, data, base

    # -- drivers -------------------------------------------------------------------------------------------

    def _kldr_layout(self, h: DumpHeader) -> Layout:
        if not self.dump.is_64bit:
            return KLDR_DATA_TABLE_ENTRY32
        if self.dump.machine == Machine.ARM64 or (h.minor_version or 0) >= WIN10_FIRST_BUILD:
            return KLDR_DATA_TABLE_ENTRY_LIVE_WIN10_X64
        return KLDR_DATA_TABLE_ENTRY64

    def _unicode(self, raw: bytes) -> str | None:
        length, _maxlen, buf = split_unicode_string(raw, is_64bit=self.ps == 8)
        if not length or not buf or length > MAX_NAME_BYTES:
            return None
        data = self.mem.read(buf, length & ~1)
        return None if data is None else data.decode("utf-16-le", "replace")

    def _pe_facts(self, base: int) -> tuple[int, int, int] | None:
        """(TimeDateStamp, CheckSum, SizeOfImage) from the image's PE header, when its page is present."""
        page = self.mem.read(base, 0x400)
        if page is None or page[:2] != b"MZ":
            return None
        pe = struct.unpack_from("<I", page, 0x3C)[0]
        if not 0x40 <= pe <= 0x400 - 0x60 or page[pe : pe + 4] != b"PE\0\0":
            return None
        ts = struct.unpack_from("<I", page, pe + 8)[0]
        size, checksum = struct.unpack_from("<I4xI", page, pe + 0x18 + 0x38)
        return ts, checksum, size

    def _drivers(self, h: DumpHeader, f: dict[str, int]) -> list[LoadedDriver]:
        head_raw = h.ps_loaded_module_list or f.get("PsLoadedModuleList")
        if not head_raw:
            self.warn("no PsLoadedModuleList address; no driver list")
            return []
        head = self.mem.canon(head_raw)
        lay = self._kldr_layout(h)
        out: list[LoadedDriver] = []
        seen = {head}
        entry = self.mem.pointer(head)
        while entry and entry != head:
            if entry in seen:
                self.warn(f"PsLoadedModuleList loops back to {entry:#x} after {len(out)} entries; walk stopped")
                break
            if len(out) >= MAX_DRIVERS:
                self.warn(f"PsLoadedModuleList has more than {MAX_DRIVERS} entries; walk stopped")
                break
            seen.add(entry)
            raw = self.mem.read(entry, lay.size)
            if raw is None:
                self.warn(f"PsLoadedModuleList entry {entry:#x} is not in the dump; walk stopped")
                break
            v = lay.unpack(raw)
            name = self._unicode(v["FullDllName"]) or self._unicode(v["BaseDllName"])
            ts, checksum, size = v["TimeDateStamp"], v["CheckSum"], v["SizeOfImage"]
            pe = self._pe_facts(v["DllBase"]) if v["DllBase"] else None
            if pe is not None and pe[2] == size:
                ts, checksum = pe[0], pe[1]
            out.append(LoadedDriver(name, v["DllBase"], size, ts, checksum))
            entry = v["InLoadOrderLinks"][0]
        if entry == 0:
            self.warn(f"PsLoadedModuleList ends in a null link after {len(out)} entries")
        return out

    def _unloaded(self, f: dict[str, int]) -> list[UnloadedDriver] | None:
        ptr_va, last_va = f.get("MmUnloadedDrivers"), f.get("MmLastUnloadedDriver")
        if not ptr_va or not last_va:
            return None
        array = self.mem.pointer(self.mem.canon(ptr_va))
        last = self.mem.u32(self.mem.canon(last_va))
        if array is None or last is None:
            self.warn("MmUnloadedDrivers / MmLastUnloadedDriver are not in the dump; no unloaded-driver list")
            return None
        if not array:
            return []
        lay = UNLOADED_DRIVERS64 if self.ps == 8 else UNLOADED_DRIVERS32
        raw = self.mem.read(array, lay.size * MI_UNLOADED_DRIVERS)
        if raw is None:
            self.warn(f"MmUnloadedDrivers array at {array:#x} is not in the dump; no unloaded-driver list")
            return None
        last %= MI_UNLOADED_DRIVERS
        out = []
        for k in range(MI_UNLOADED_DRIVERS):
            i = (last - 1 - k) % MI_UNLOADED_DRIVERS
            v = lay.unpack(raw, i * lay.size)
            if not v["StartAddress"] and not v["EndAddress"]:
                continue
            name = self._unicode(v["Name"])
            length = split_unicode_string(v["Name"], is_64bit=self.ps == 8)[0]
            out.append(UnloadedDriver(name or "", v["StartAddress"], v["EndAddress"], min(length, 24)))
        return out

    def _mm(self, f: dict[str, int]) -> dict[str, int]:
        def val(name: str, width: int) -> int:
            ptr = f.get(name)
            if not ptr:
                return 0
            v = self.mem.u32(self.mem.canon(ptr)) if width == 4 else self.mem.pointer(self.mem.canon(ptr))
            return v or 0

        return {
            "mm_special_pool_tag": val("MmSpecialPoolTag", 4),
            "mi_triage_action_taken": val("MmTriageActionTaken", 4),
            "mm_verify_driver_level": 0,
            "kernel_verifier": val("KernelVerifier", 4),
            "mm_maximum_non_paged_pool": val("MmMaximumNonPagedPoolInBytes", 8),
            "mm_allocated_non_paged_pool": val("MmAllocatedNonPagedPool", 8),
            "paged_pool_maximum": val("MmSizeOfPagedPoolInBytes", 8),
            "paged_pool_allocated": 0,
            "committed_pages": val("MmTotalCommittedPages", 8),
            "committed_pages_peak": val("MmPeakCommitment", 8),
            "commit_limit_maximum": val("MmTotalCommitLimitMaximum", 8),
        }


def walk_kernel(dump: KernelDump, *, memory: DumpMemory | None = None, keys: KdbgKeys | None = None) -> KernelParts:
    """The parts of a small memory dump of ``dump``'s crash; ConversionError when an essential is missing.

    ``memory``: the dump's page-cached virtual memory (made here when not given; conversion passes its own so that
    the data-block policy reuses the cache). ``keys`` decode an encoded KDBG when they are known.
    """
    if dump.machine not in WALKABLE:
        raise ConversionError(f"{dump.path}: machine {dump.machine:#x} cannot be walked (x64, x86 and ARM64 only)")
    return _Collector(dump, memory if memory is not None else DumpMemory(dump), keys).run()
