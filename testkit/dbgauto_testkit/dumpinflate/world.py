"""Build the kernel address space a real small dump came from: its captured bytes at their real VAs, plus the
structures the kernel keeps in a form the small dump does not (loaded-module list, unloaded-driver array, the
KTHREAD stack bounds of the other processors' threads), behind page tables rooted at the header's DTB.

Everything placed is either a byte the small dump captured (data blocks, KPRCB/ETHREAD/EPROCESS copies, stack,
KDBG) or derived from one of its tables:

* ``PsLoadedModuleList`` (the header's / KDBG's address) heads a LIST_ENTRY chain of live Windows 10 x64
  ``_KLDR_DATA_TABLE_ENTRY`` records (DllBase 0x30, SizeOfImage 0x40, FullDllName 0x48, BaseDllName 0x58,
  CheckSum 0x78, TimeDateStamp 0x9C) in driver-list order, names as UNICODE_STRINGs in memory.
* ``*KDBG.MmUnloadedDrivers`` points to a 50-entry UNLOADED_DRIVERS64 array (name, start, end, time; 0x28 each)
  and ``*KDBG.MmLastUnloadedDriver`` = count: the small dump's list (newest first) sits at indices count-1 … 0.
* For every processor whose current thread's KTHREAD bytes were not captured, StackBase = the end of that
  processor's stack data block (the block starting at its saved context's RSP) and StackLimit = StackBase - 0x6000,
  at the KDBG's OffsetKThreadStackBase / OffsetKThreadStackLimit.
* Encoded variant: the KDBG is stored encoded as Windows 8+ x64 keeps it, with chosen KiWaitNever /
  KiWaitAlways, and a KdCopyDataBlock-like code pattern (``cmp byte [rip+KdpDataBlockEncoded],0``;
  ``mov rax,[rip+KiWaitNever]``; ``lea r9,[rip+KdDebuggerDataBlock]``; ``mov r10,[rip+KiWaitAlways]``) on a
  free page of nt's image with the three variables beside it, so a symbol-less decoder can find the keys.

Synthesized structures live in a pool region (POOL_BASE) that no captured block touches.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field

from dbgauto_testkit.dumpsynth import PAGE_2M, PAGE_SIZE, AddressSpace

from .kworld_layout import X64, kldr_entry, unicode_string
from .smalldump import SmallDump

POOL_BASE = 0xFFFF_D000_1000_0000
KERNEL_STACK_SIZE = 0x6000
MI_UNLOADED_DRIVERS = 50
DEFAULT_KEYS = (0x5A3C_96E1_D27B_480F, 0x1F2E_3D4C_5B6A_7988)  # KiWaitNever, KiWaitAlways (chosen)
_M64 = (1 << 64) - 1


def _rol(v: int, n: int) -> int:
    n &= 63
    return ((v << n) | (v >> (64 - n))) & _M64 if n else v


def encode_kdbg(raw: bytes, never: int, always: int, enc_va: int) -> bytes:
    """Encode a KDBG as the kernel keeps it (inverse of kd-structures.md §3's decode), word by word."""
    n = len(raw) // 8
    out = []
    for (w,) in struct.iter_unpack("<Q", raw[: n * 8]):
        w ^= always
        w = int.from_bytes(w.to_bytes(8, "little"), "big")
        w ^= (enc_va | 0xFFFF_0000_0000_0000) & _M64
        w = _rol(w, 64 - (never & 0xFF & 63))
        out.append(w ^ never)
    return struct.pack(f"<{n}Q", *out) + raw[n * 8 :]


@dataclass
class World:
    """What was placed, and where (tests compare the converter's findings with these)."""

    small: SmallDump
    placements: list[tuple[int, bytes, str]] = field(default_factory=list)
    crashing_cpu: int = 0
    prcb_va: int = 0
    thread_va: int = 0
    process_va: int = 0
    module_entries: list[int] = field(default_factory=list)
    unloaded_array: int = 0
    keys: tuple[int, int, int] | None = None  # (KiWaitNever, KiWaitAlways, KdpDataBlockEncoded VA)
    code_va: int | None = None
    synthesized_stack_bases: dict[int, int] = field(default_factory=dict)

    def place(self, va: int, data: bytes, what: str) -> None:
        self.placements.append((va, bytes(data), what))


class _Captured:
    """The VA ranges the small dump captured, to keep synthesized bytes off them."""

    def __init__(self, sd: SmallDump) -> None:
        spans = sorted((a, a + len(d), d) for a, d in sd.blocks)
        self.starts = [a for a, _, _ in spans]
        self.ends = [e for _, e, _ in spans]
        self.data = [d for _, _, d in spans]

    def overlapping(self, a: int, e: int) -> list[int]:
        """Indices (into the sorted spans) of captured ranges that intersect [a, e)."""
        out = []
        i = bisect.bisect_right(self.starts, e - 1) - 1
        while i >= 0 and self.ends[i] > a:  # spans are disjoint and sorted, so ends are sorted too
            out.append(i)
            i -= 1
        return out

    def overlaps(self, a: int, e: int) -> bool:
        return bool(self.overlapping(a, e))


def _u64(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def _processor_blocks(sd: SmallDump) -> list[int]:
    n = sd.number_processors
    raw = sd.read_captured(sd.kd("KiProcessorBlock"), 8 * n)
    if raw is None:
        raise ValueError("the small dump did not capture KiProcessorBlock")
    return list(struct.unpack(f"<{n}Q", raw))


def _place_copies(w: World, sd: SmallDump) -> None:
    prcbs = _processor_blocks(sd)
    number = struct.unpack_from("<H", sd.prcb, sd.kd("OffsetPrcbNumber"))[0]
    w.crashing_cpu = number
    w.prcb_va = prcbs[number]
    w.thread_va = _u64(sd.prcb, sd.kd("OffsetPrcbCurrentThread"))
    w.process_va = _u64(sd.thread, sd.kd("OffsetKThreadApcProcess"))
    w.place(w.prcb_va, sd.prcb, "KPRCB copy")
    w.place(w.thread_va, sd.thread, "ETHREAD copy")
    w.place(w.process_va, sd.process, "EPROCESS copy")
    w.place(sd.top_of_stack, sd.stack, "stack copy")


class _Pool:
    def __init__(self, base: int) -> None:
        self.cur = base

    def alloc(self, size: int, align: int = 0x10) -> int:
        self.cur = (self.cur + align - 1) & ~(align - 1)
        va = self.cur
        self.cur += size
        return va


def _place_module_list(w: World, sd: SmallDump, pool: _Pool) -> None:
    head = sd.h64(0x20)
    if sd.kd("PsLoadedModuleList") != head:
        raise ValueError("header and KDBG disagree on PsLoadedModuleList")
    entries = [pool.alloc(X64.kldr_size) for _ in sd.drivers]
    for i, (d, va) in enumerate(zip(sd.drivers, entries, strict=True)):
        full = d.name.encode("utf-16-le")
        full_va = pool.alloc(len(full) + 2)
        w.place(full_va, full + b"\0\0", f"FullDllName {i}")
        entry = kldr_entry(
            X64,
            flink=entries[i + 1] if i + 1 < len(entries) else head,
            blink=entries[i - 1] if i > 0 else head,
            base=d.base,
            size=d.size,
            full_va=full_va,
            full_length=len(full),
            base_length=len(d.name.rsplit("\\", 1)[-1].encode("utf-16-le")),
            checksum=d.checksum,
            timestamp=d.timestamp,
        )
        w.place(va, entry, f"KLDR entry {i}")
    first = entries[0] if entries else head
    last = entries[-1] if entries else head
    w.place(head, struct.pack("<QQ", first, last), "PsLoadedModuleList head")
    w.module_entries = entries


def _place_unloaded(w: World, sd: SmallDump, pool: _Pool) -> None:
    array = pool.alloc(MI_UNLOADED_DRIVERS * 0x28)
    raw = bytearray(MI_UNLOADED_DRIVERS * 0x28)
    count = len(sd.unloaded)
    for k, u in enumerate(sd.unloaded):  # newest first in the small dump
        i = count - 1 - k
        name = u.name.encode("utf-16-le")
        buf = pool.alloc(max(len(name), u.name_length) + 2)
        w.place(buf, name + b"\0\0", f"unloaded name {k}")
        raw[i * 0x28 : i * 0x28 + 0x10] = unicode_string(X64, u.name_length, buf)
        struct.pack_into("<QQQ", raw, i * 0x28 + 0x10, u.start, u.end, 0x01D707F2_00000000 + k)
    w.place(array, bytes(raw), "MmUnloadedDrivers array")
    w.place(sd.kd("MmUnloadedDrivers"), struct.pack("<Q", array), "MmUnloadedDrivers")
    w.place(sd.kd("MmLastUnloadedDriver"), struct.pack("<I", count), "MmLastUnloadedDriver")
    w.unloaded_array = array


def _place_stack_bounds(w: World, sd: SmallDump, captured: _Captured) -> None:
    """StackBase/StackLimit of the other processors' current threads, from their stack data blocks."""
    starts = {a: a + len(d) for a, d in sd.blocks}
    off_ctx, off_cur = sd.kd("OffsetPrcbContext"), sd.kd("OffsetPrcbCurrentThread")
    off_base, off_limit = sd.kd("OffsetKThreadStackBase"), sd.kd("OffsetKThreadStackLimit")
    for cpu, prcb in enumerate(_processor_blocks(sd)):
        if cpu == w.crashing_cpu or not prcb:
            continue
        ctx_ptr = sd.read_captured(prcb + off_ctx, 8)
        thread_raw = sd.read_captured(prcb + off_cur, 8)
        if ctx_ptr is None or thread_raw is None:
            continue
        ctx = sd.read_captured(_u64(ctx_ptr, 0), 0x4D0)
        if ctx is None:
            continue
        end = starts.get(_u64(ctx, 0x98))
        thread = _u64(thread_raw, 0)
        if end is None or captured.overlaps(thread + off_limit, thread + off_limit + 8):
            continue
        if captured.overlaps(thread + off_base, thread + off_base + 8):
            continue
        w.place(thread + off_limit, struct.pack("<Q", end - KERNEL_STACK_SIZE), f"StackLimit cpu{cpu}")
        w.place(thread + off_base, struct.pack("<Q", end), f"StackBase cpu{cpu}")
        w.synthesized_stack_bases[cpu] = end


def _free_nt_page(sd: SmallDump, captured: _Captured) -> int:
    nt = sd.drivers[0]
    for va in range(nt.base + 0x100000, nt.base + nt.size - PAGE_SIZE, PAGE_SIZE):
        if not captured.overlaps(va, va + PAGE_SIZE):
            return va
    raise ValueError("no free page in nt's image for the KdCopyDataBlock pattern")


def kdcopy_pattern(code_va: int, kdbg_va: int, keys: tuple[int, int]) -> list[tuple[int, bytes, str]]:
    """The KdCopyDataBlock-like code at ``code_va`` and its three variables beside it (code_va + 0x800..0x818):
    ``cmp byte [rip+KdpDataBlockEncoded],0``; ``mov rax,[rip+KiWaitNever]``; ``lea r9,[rip+KdDebuggerDataBlock]``;
    ``mov r10,[rip+KiWaitAlways]``. Returns the placements (va, bytes, what); KdpDataBlockEncoded is code_va + 0x800."""
    enc_va, never_va, always_va = code_va + 0x800, code_va + 0x808, code_va + 0x810
    never, always = keys

    def rel(at: int, length: int, target: int) -> bytes:
        return struct.pack("<i", target - (code_va + at + length))

    code = b"".join(
        (
            b"\x80\x3d" + rel(0, 7, enc_va) + b"\x00",  # cmp byte ptr [rip+KdpDataBlockEncoded], 0
            b"\x48\x8b\x05" + rel(7, 7, never_va),  # mov rax, [rip+KiWaitNever]
            b"\x4c\x8d\x0d" + rel(14, 7, kdbg_va),  # lea r9, [rip+KdDebuggerDataBlock]
            b"\x4c\x8b\x15" + rel(21, 7, always_va),  # mov r10, [rip+KiWaitAlways]
            b"\xc3",
        )
    )
    return [
        (code_va, code, "KdCopyDataBlock-like code"),
        (enc_va, b"\x01", "KdpDataBlockEncoded"),
        (never_va, struct.pack("<Q", never), "KiWaitNever"),
        (always_va, struct.pack("<Q", always), "KiWaitAlways"),
    ]


def _place_encoded_kdbg(w: World, sd: SmallDump, captured: _Captured, keys: tuple[int, int]) -> bytes:
    code_va = _free_nt_page(sd, captured)
    enc_va = code_va + 0x800
    for va, data, what in kdcopy_pattern(code_va, sd.kdbg_va, keys):
        w.place(va, data, what)
    never, always = keys
    w.keys = (never, always, enc_va)
    w.code_va = code_va
    return encode_kdbg(sd.kdbg, never, always, enc_va)


_COPIES = frozenset({"KPRCB copy", "ETHREAD copy", "EPROCESS copy", "stack copy"})


def check_placements(w: World, captured: _Captured) -> None:
    """The copies must agree with the data blocks they overlap; synthesized bytes must not touch captured ones."""
    for va, data, what in w.placements:
        if what == "data block":
            continue
        for i in captured.overlapping(va, va + len(data)):
            if what not in _COPIES:
                raise ValueError(f"{what} at {va:#x} would overwrite bytes the small dump captured")
            lo, hi = max(va, captured.starts[i]), min(va + len(data), captured.ends[i])
            block = captured.data[i][lo - captured.starts[i] : hi - captured.starts[i]]
            if block != data[lo - va : hi - va]:
                raise ValueError(f"{what} disagrees with the data block at {captured.starts[i]:#x}")


def build_world(sd: SmallDump, *, encoded: bool = False, keys: tuple[int, int] = DEFAULT_KEYS) -> World:
    """Every placement (captured bytes first, then the synthesized structures)."""
    w = World(sd)
    captured = _Captured(sd)
    for a, data in sd.blocks:
        w.place(a, data, "data block")
    _place_copies(w, sd)
    kdbg = _place_encoded_kdbg(w, sd, captured, keys) if encoded else sd.kdbg
    w.place(sd.kdbg_va, kdbg, "KDBG")
    pool = _Pool(POOL_BASE)
    _place_module_list(w, sd, pool)
    _place_unloaded(w, sd, pool)
    _place_stack_bounds(w, sd, captured)
    check_placements(w, captured)
    return w


def map_placements(
    space: AddressSpace, placements: list[tuple[int, bytes, str]], large_range: tuple[int, int] | None = None
) -> None:
    """Map every page a placement touches, with 2 MiB pages for those in ``large_range`` (start, end), then write
    the bytes."""
    pages: set[int] = set()
    for va, data, _ in placements:
        pages.update(range(va // PAGE_SIZE, (va + max(len(data), 1) - 1) // PAGE_SIZE + 1))
    addresses = sorted(p * PAGE_SIZE for p in pages)
    lo, hi = large_range or (0, 0)
    large = {page - page % PAGE_2M for page in addresses if lo <= page < hi}
    for region in sorted(large):
        space.map(region, size=PAGE_2M, page_size=PAGE_2M)
    for page in addresses:
        if page - page % PAGE_2M not in large:
            space.map(page, size=PAGE_SIZE)
    for va, data, _ in placements:
        space.write_virtual(va, data)


def build_space(
    w: World,
    *,
    ram_bytes: int = 64 << 20,
    placement: str = "sequential",
    large_pages: bool = False,
    seed: int = 0,
) -> AddressSpace:
    """Page tables rooted at the header's DTB mapping every placed byte (nt's image with 2 MiB pages if asked)."""
    sd = w.small
    space = AddressSpace("x64", ram_bytes=ram_bytes, placement=placement, seed=seed, dtb=sd.dtb)
    nt = sd.drivers[0]
    map_placements(space, w.placements, (nt.base, nt.base + nt.size) if large_pages else None)
    return space
