"""Which memory a small dump carries as data blocks: the policy, worked out from the Windows-written sample.

The 1831 blocks of ``../shared/dumps/triage_x64.dmp`` (Windows 10 19041, 16 processors) fall into these groups,
in table order; this module emits the same groups in the same order:

1. ``MmVerifierData`` (KDBG pointer), 0x9C bytes (x64; the size seen in the sample).
2. For every processor n (KiProcessorBlock[n]): its KPRCB (SizePrcb bytes); the CONTEXT its ``KPRCB.Context``
   points to (0x4D0 bytes, or ``CONTEXT_EX.All.Length`` = 0x640 when the CONTEXT_XSTATE flag is set); its
   stack from that context's SP up to the current thread's StackBase (for the crashing processor from the header
   CONTEXT's SP). 48 blocks in the sample.
3. The KiProcessorBlock array itself (NumberProcessors pointers), then 0x100 bytes at NtBuildLab.
4. The blocks drivers and the kernel registered for triage dumps: ``IopTriageDumpDataBlocks`` holds
   ``IopNumTriageDumpDataBlocks`` {Start, End} pointer pairs (31 in the sample: kernel globals, page-table entries
   in the PTE self-map, ...); each range is copied, absent ones skipped.
5. Whole pages: the faulting PC's page, the pages of the bugcheck parameters that are kernel addresses, then the
   two Iop* variables, the exception address's page, the header SP's page, and nt's header page (KernBase).
6. 256-byte windows ``[p, p+0x100)`` at every kernel-address value ``p`` found (pointer-aligned) in the header
   CONTEXT's integer registers and the triage stack copy (depth 0), and in the current ETHREAD and EPROCESS
   (depth 1); every window's own pointers are followed breadth-first up to depth 2. These are 1116 of the
   sample's blocks (size 0x100) plus the clipped pieces.

Blocks never overlap: a new range keeps only its parts not covered yet (this produces the sample's odd sizes such
as 0x9C-byte tails and 1-byte pieces), and the KDBG range is reserved (the KDBG travels decoded in its own
section). Absent memory is skipped, and a window stops at the first absent page.

Limits (measured by tests/convert on the sample re-inflated into Complete and Kernel bitmap dumps): the output
has 1830 blocks, 1732 identical to one of the sample's (address and size), 1811 lying wholly inside the
sample's blocks; 1816 of the sample's 1831 blocks are covered byte for byte, 99.7 % of its bytes. Not
reproduced: one page of nt's .rdata (0xFFFFF8047BA82000, RVA 0x82000: UNWIND_INFO records; most likely the
unwind data of the function at the exception address, found through nt's .pdata table, which the small dump does
not carry, so neither can a re-inflated dump) and 14 windows whose pointers sit in memory Windows read but did not
keep.
Identical blocks are fewer than covered ones because clipping depends on the order Windows visited pointers,
which the file does not record. Depth 2 and the ETHREAD/EPROCESS sources were chosen because they reproduce the
sample best (depth 1: ~800 blocks covered; depth 3: ~1500 blocks the sample does not have). On a real dump the
policy reads memory the sample's re-inflation lacks, so expect some more windows there. Budget: MAX_BLOCKS
blocks and MAX_BLOCK_BYTES bytes; a window whose range is already covered is not read at all.
"""

from __future__ import annotations

import bisect
import struct
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dbgauto.kdump.constants import PAGE_SIZE, Machine
from dbgauto.kdump.structs.context import CpuContext, context_layout

if TYPE_CHECKING:
    from dbgauto.kernel.kdbg import KdbgBlock
    from dbgauto.kernel.memory import DumpMemory
    from dbgauto.kernel.parts import KernelParts

__all__ = ["PolicyInputs", "select_data_blocks"]

WINDOW: Final = 0x100
MAX_DEPTH: Final = 2
MAX_BLOCKS: Final = 8192
MAX_BLOCK_BYTES: Final = 8 << 20
MAX_STACK_BLOCK: Final = 0x4000
MAX_TRIAGE_ENTRIES: Final = 1024
MAX_TRIAGE_RANGE: Final = 1 << 20
MM_VERIFIER_DATA_SIZE64: Final = 0x9C
NT_BUILD_LAB_SIZE: Final = 0x100
CONTEXT_XSTATE_BIT: Final = 0x40
MAX_CONTEXT_EX: Final = 0x2000
KERNEL_START64: Final = 0xFFFF_8000_0000_0000
KERNEL_START32: Final = 0x8000_0000

Block = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    """What the policy needs from the collected parts."""

    is_64bit: bool
    machine: int
    context: CpuContext
    exception_address: int | None
    bugcheck_parameters: tuple[int, ...]
    kdbg: KdbgBlock
    processor_blocks: list[int]
    crashing_processor: int
    thread_va: int
    thread: bytes
    process_va: int | None
    process: bytes | None
    stack: bytes | None
    top_of_stack: int
    kern_base: int | None


def policy_inputs(p: KernelParts) -> PolicyInputs:
    """The policy's inputs from a large dump's parts (every essential present: the walk guarantees it)."""
    assert p.context is not None
    assert p.kdbg is not None
    assert p.processor is not None
    assert p.thread_va is not None
    assert p.thread is not None
    assert p.top_of_stack is not None
    return PolicyInputs(
        is_64bit=p.is_64bit,
        machine=p.machine,
        context=p.context,
        exception_address=p.header.exception.address if p.header.exception is not None else None,
        bugcheck_parameters=tuple(v for v in p.header.bugcheck_parameters if v is not None),  # "PAGE" = absent
        kdbg=p.kdbg,
        processor_blocks=p.processor_blocks,
        crashing_processor=p.processor,
        thread_va=p.thread_va,
        thread=p.thread,
        process_va=p.process_va,
        process=p.process,
        stack=p.stack,
        top_of_stack=p.top_of_stack,
        kern_base=p.kernel_base,
    )


class _Coverage:
    """Disjoint, merged [start, end) ranges; :meth:`add` returns the parts of a range that were not covered."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def covers(self, a: int, e: int) -> bool:
        i = bisect.bisect_right(self.starts, a) - 1
        return i >= 0 and self.ends[i] >= e

    def add(self, a: int, e: int) -> list[tuple[int, int]]:
        if e <= a:
            return []
        starts, ends = self.starts, self.ends
        i = bisect.bisect_right(starts, a) - 1
        if i < 0 or ends[i] < a:
            i += 1
        j = i
        gaps: list[tuple[int, int]] = []
        cur = a
        while j < len(starts) and starts[j] <= e:
            if starts[j] > cur:
                gaps.append((cur, starts[j]))
            cur = max(cur, ends[j])
            j += 1
        if cur < e:
            gaps.append((cur, e))
        if not gaps:
            return []
        lo = min(a, starts[i]) if i < j else a
        hi = max(e, ends[j - 1]) if i < j else e
        starts[i:j] = [lo]
        ends[i:j] = [hi]
        return gaps


class _Selector:
    def __init__(self, mem: DumpMemory, inp: PolicyInputs) -> None:
        self.mem = mem
        self.inp = inp
        self.f = inp.kdbg.fields
        self.ps = 8 if inp.is_64bit else 4
        self.kernel_start = KERNEL_START64 if inp.is_64bit else KERNEL_START32
        self.cov = _Coverage()
        self.blocks: list[Block] = []
        self.total = 0
        self.cov.add(inp.kdbg.va, inp.kdbg.va + inp.kdbg.size)  # reserved: the KDBG has its own section
        self._ptr_fmt = "<Q" if inp.is_64bit else "<I"
        self.absent_ranges: list[int] = []  # fixed ranges (or parts) not in the dump, by start address
        self.absent_windows = 0

    # -- emission ------------------------------------------------------------------------------------------

    def full(self) -> bool:
        return len(self.blocks) >= MAX_BLOCKS or self.total >= MAX_BLOCK_BYTES

    def _present_runs(self, a: int, e: int) -> Iterator[Block]:
        run_start, chunks = a, []
        addr = a
        while addr < e:
            stop = min(e, (addr | (PAGE_SIZE - 1)) + 1)
            data = self.mem.read(addr, stop - addr)
            if data is None:
                if not self.absent_ranges or self.absent_ranges[-1] != a:
                    self.absent_ranges.append(a)
                if chunks:
                    yield run_start, b"".join(chunks)
                chunks, run_start = [], stop
            else:
                chunks.append(data)
            addr = stop
        if chunks:
            yield run_start, b"".join(chunks)

    def emit(self, a: int, size: int, data: bytes | None = None) -> bool:
        """Add the uncovered parts of [a, a+size); ``data`` when the bytes are already read. True if any added."""
        if size <= 0 or self.full():
            return False
        added = False
        for x, y in self.cov.add(a, a + size):
            pieces = [(x, data[x - a : y - a])] if data is not None else list(self._present_runs(x, y))
            for addr, chunk in pieces:
                if chunk and not self.full():
                    self.blocks.append((addr, chunk))
                    self.total += len(chunk)
                    added = True
        return added

    def page_of(self, va: int | None) -> None:
        if va is not None and va >= self.kernel_start:
            self.emit(va & ~(PAGE_SIZE - 1), PAGE_SIZE)

    def ptr(self, va: int) -> int | None:
        return self.mem.pointer(va)

    def kd(self, name: str) -> int | None:
        v = self.f.get(name)
        return self.mem.canon(v) if v else None

    # -- fixed groups --------------------------------------------------------------------------------------

    def processors(self) -> None:
        f, inp = self.f, self.inp
        ctx_lay = context_layout(inp.machine)
        ctx_size = ctx_lay.size
        flags_off = ctx_lay.offset_of("context_flags")
        sp_off = ctx_lay.offset_of(_SP_NAME.get(inp.machine, "rsp" if inp.is_64bit else "esp"))
        xstate = inp.machine != Machine.ARM64  # CONTEXT_XSTATE (0x40) is an x86/x64 ContextFlags bit
        for cpu, prcb in enumerate(inp.processor_blocks):
            if not prcb:
                continue
            self.emit(prcb, f["SizePrcb"])
            ctx_va = self.ptr(prcb + f["OffsetPrcbContext"]) if f.get("OffsetPrcbContext") else None
            sp = None
            if ctx_va:
                head = self.mem.read(ctx_va, ctx_size + 0x18)
                size = ctx_size
                if head is not None:
                    flags = struct.unpack_from("<I", head, flags_off)[0]
                    if xstate and flags & CONTEXT_XSTATE_BIT:
                        all_off, all_len = struct.unpack_from("<iI", head, ctx_size)
                        if all_off == -ctx_size and ctx_size <= all_len <= MAX_CONTEXT_EX:
                            size = all_len
                    sp = struct.unpack_from(self._ptr_fmt, head, sp_off)[0]
                self.emit(ctx_va, size)
            if cpu == inp.crashing_processor:
                sp = self.mem.canon(inp.context.sp)
            if sp:
                self.emit(sp, self._stack_end(prcb, sp) - sp)

    def _stack_end(self, prcb: int, sp: int) -> int:
        f = self.f
        page_end = (sp | (PAGE_SIZE - 1)) + 1
        thread = self.ptr(prcb + f["OffsetPrcbCurrentThread"]) if f.get("OffsetPrcbCurrentThread") else None
        base = self.ptr(thread + f["OffsetKThreadStackBase"]) if thread and f.get("OffsetKThreadStackBase") else None
        if base and sp < base <= sp + MAX_STACK_BLOCK:
            return base
        return page_end

    def triage_registered(self) -> tuple[int | None, int | None, int]:
        num_va, arr_va = self.kd("IopNumTriageDumpDataBlocks"), self.kd("IopTriageDumpDataBlocks")
        if not num_va or not arr_va:
            return num_va, arr_va, 0
        n = self.mem.u32(num_va) or 0
        n = min(n, MAX_TRIAGE_ENTRIES)
        raw = self.mem.read(arr_va, n * 2 * self.ps) if n else None
        if raw is None:
            return num_va, arr_va, 0
        pairs = struct.unpack(f"<{2 * n}{'Q' if self.ps == 8 else 'I'}", raw)
        for i in range(n):
            start, end = pairs[2 * i], pairs[2 * i + 1]
            if start < end and end - start <= MAX_TRIAGE_RANGE:
                self.emit(start, end - start)
        return num_va, arr_va, n

    # -- pointer windows -----------------------------------------------------------------------------------

    def _pointers(self, data: bytes, base: int) -> list[int]:
        skip = (-base) % self.ps
        n = (len(data) - skip) // self.ps
        if n <= 0:
            return []
        values = struct.unpack_from(f"<{n}{'Q' if self.ps == 8 else 'I'}", data, skip)
        ks = self.kernel_start
        return [v for v in values if v >= ks]

    def windows(self) -> None:
        inp = self.inp
        queue: deque[tuple[int, int]] = deque()
        regs = inp.context.registers
        names = [n for n in context_layout(inp.machine).by_name if n in regs and n not in _NOT_POINTERS]
        for name in names:
            v = regs[name]
            if v >= self.kernel_start:
                queue.append((v, 0))
        if inp.stack:
            queue.extend((v, 0) for v in self._pointers(inp.stack, inp.top_of_stack))
        queue.extend((v, 1) for v in self._pointers(inp.thread, inp.thread_va))
        if inp.process is not None and inp.process_va:
            queue.extend((v, 1) for v in self._pointers(inp.process, inp.process_va))
        seen: set[int] = set()
        level = -1
        while queue and not self.full():
            if queue[0][1] > level:  # a new depth starts: the queue now holds exactly that depth's pointers
                level = queue[0][1]
                todo = {p for p, _ in queue if p not in seen and not self.cov.covers(p, p + WINDOW)}
                self.mem.prefetch([(p, WINDOW) for p in sorted(todo)])
            v, depth = queue.popleft()
            if v in seen:
                continue
            seen.add(v)
            if self.cov.covers(v, v + WINDOW):
                continue  # nothing new to keep, so nothing new to scan: skip the read
            data = self.mem.read_prefix(v, WINDOW)
            if not data:
                self.absent_windows += 1
                continue
            if self.emit(v, len(data), data) and depth < MAX_DEPTH:
                queue.extend((p, depth + 1) for p in self._pointers(data, v))

    def run(self) -> list[Block]:
        inp, f = self.inp, self.f
        if inp.is_64bit and self.kd("MmVerifierData"):
            self.emit(self.kd("MmVerifierData") or 0, MM_VERIFIER_DATA_SIZE64)
        self.processors()
        if f.get("KiProcessorBlock"):
            self.emit(self.kd("KiProcessorBlock") or 0, len(inp.processor_blocks) * self.ps)
        if f.get("NtBuildLab"):
            self.emit(self.kd("NtBuildLab") or 0, NT_BUILD_LAB_SIZE)
        num_va, arr_va, n = self.triage_registered()
        pc = self.mem.canon(inp.context.pc)
        self.page_of(pc)
        for p in inp.bugcheck_parameters:
            self.page_of(self.mem.canon(p))
        if num_va and arr_va:
            self.emit(num_va, 4)
            self.emit(arr_va, n * 2 * self.ps)
        if inp.exception_address:
            self.page_of(self.mem.canon(inp.exception_address))
        self.page_of(self.mem.canon(inp.context.sp))
        if inp.kern_base:
            self.page_of(self.mem.canon(inp.kern_base))
        self.windows()
        return self.blocks


# The CONTEXT's stack-pointer field by machine (ARM64: Sp at 0x100).
_SP_NAME: Final = {Machine.AMD64: "rsp", Machine.I386: "esp", Machine.ARM64: "sp"}

# Registers whose values are never followed as pointers (flags, selectors, debug registers, FP state).
_NOT_POINTERS: Final = frozenset(
    {"cpsr", "fpcr", "fpsr"}  # ARM64 status / FP control (its V, Bcr/Bvr, Wcr/Wvr arrays are not scalars)
    | {"context_flags", "mxcsr", "cs", "ds", "es", "fs", "gs", "ss", "efl", "dr0", "dr1", "dr2", "dr3", "dr6", "dr7"}
    | {"p_home", "vector_control", "debug_control", "last_branch_to_rip", "last_branch_from_rip"}
    | {"last_exception_to_rip", "last_exception_from_rip"}
)


def select_data_blocks(mem: DumpMemory, inp: PolicyInputs, warnings: list[str] | None = None) -> list[Block]:
    """The data blocks (VA, bytes) in emission order; see the module docstring for the policy.

    Memory the dump lacks (user memory, paged-out pool) is skipped; one summary line goes to ``warnings``.
    """
    sel = _Selector(mem, inp)
    blocks = sel.run()
    if warnings is not None:
        if sel.absent_ranges or sel.absent_windows:
            first = f" (first at {sel.absent_ranges[0]:#x})" if sel.absent_ranges else ""
            warnings.append(
                f"data blocks: skipped memory not in the dump: {len(sel.absent_ranges)} fixed ranges{first}, "
                f"{sel.absent_windows} pointer windows"
            )
        if sel.full():
            warnings.append(f"data blocks: budget reached ({len(blocks)} blocks, {sel.total:#x} bytes); rest dropped")
    return blocks
