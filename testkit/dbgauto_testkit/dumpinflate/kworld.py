"""Plausible synthetic kernel worlds from scratch (no shared material): x64 (build 19041), x86 PAE, x86 non-PAE,
ARM64 (build 26100, the public symbols' real offsets where they exist; AArch64 tables:
:class:`dbgauto_testkit.dumpsynth.paging_arm64.Arm64AddressSpace`).

A world is what a converter needs from a Complete / Kernel / Active dump, laid out as the kernel keeps it and
deterministic from a seed: KDDEBUGGER_DATA64 (optionally encoded on x64, with the KdCopyDataBlock-like pattern
of :mod:`.world`), KiProcessorBlock and N KPRCBs with their saved CONTEXT (``*(KPRCB + OffsetPrcbContext)``) and
CurrentThread, ETHREADs with Cid / stack bounds / KernelStack / ApcState.Process, an EPROCESS with ImageFileName
and UniqueProcessId, a kernel stack of return addresses into modules, PsLoadedModuleList (nt, hal, inbox drivers,
third-party ones) with a minimal PE header at each image base, MmUnloadedDrivers, and a header whose bug check
names a chosen culprit driver.

The offsets and their sources are in :mod:`.kworld_layout` (written from the spec, never imported from dbgauto,
style.md §E).

API::

    build_kworld(arch="x64" | "x86pae" | "x86" | "arm64", *, seed=0, bugcheck=0xD1 (BUGCHECKS menu), culprit=None,
                 build=None, processors=2, encoded=False, modules=None (count, 4..32; default 12..24),
                 system_time=None, uptime_seconds=None, ram_bytes=32 MiB, placement="scattered", stack_values=(),
                 header_registers=None) -> KWorld
    write_kworld(path, arch="x64", dump_type=1 | 5 | 6, *, overwrite=False, **build_options) -> KWorldDump
    (ARM64: ``encoded=True`` stores the KDBG with the x64 formula and no code pattern; ``world.keys`` decode it.)
    KWorld: .arch .space .fields .kdbg (plain bytes) .kdbg_va .keys .modules .unloaded .cpus .process .stack ...
"""

from __future__ import annotations

import itertools
import os
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dbgauto_testkit.dumpsynth import (
    PAGE_SIZE,
    AddressSpace,
    DumpInfo,
    HeaderFields,
    amd64_context,
    write_dump,
    x86_context,
)
from dbgauto_testkit.dumpsynth.paging_arm64 import ARM64_MACHINE, Arm64AddressSpace, arm64_context

from .kworld_layout import (
    BUGCHECKS,
    INBOX_DRIVERS,
    KDBG_POINTERS,
    LAYOUTS,
    MI_UNLOADED_DRIVERS,
    PROCESS_NAMES,
    THIRD_PARTY,
    KernelLayout,
    kldr_entry,
    pe_header,
    sign_extend,
    unicode_string,
)
from .world import DEFAULT_KEYS, encode_kdbg, kdcopy_pattern, map_placements

__all__ = ["BUGCHECKS", "Cpu", "KWorld", "KWorldDump", "Module", "Unloaded", "build_kworld", "write_kworld"]


@dataclass(frozen=True)
class Module:
    name: str  # FullDllName
    base: int
    size: int
    timestamp: int
    checksum: int
    entry_va: int

    @property
    def base_name(self) -> str:
        return self.name.rsplit("\\", 1)[-1]


@dataclass(frozen=True)
class Unloaded:
    name: str
    start: int
    end: int


@dataclass
class Cpu:
    prcb_va: int
    prcb: bytes
    context_va: int
    context: bytes
    saved_sp: int
    thread_va: int
    thread: bytes
    stack_limit: int
    stack_base: int


@dataclass
class KWorld:
    """What was placed and where (tests compare the converter's findings with these)."""

    arch: str
    seed: int
    build: int
    space: AddressSpace
    fields: HeaderFields
    kdbg_va: int
    kdbg: bytes  # plain (decoded) bytes
    kdbg_stored: bytes  # as in memory (encoded when ``keys``)
    keys: tuple[int, int, int] | None  # (KiWaitNever, KiWaitAlways, KdpDataBlockEncoded VA)
    ps_loaded_module_list: int
    processor_block: int
    cpus: list[Cpu]
    crashing_cpu: int
    process_va: int
    process: bytes
    process_name: str
    pid: int
    tid: int
    header_sp: int
    header_pc: int
    stack: bytes  # [saved SP of the crashing processor, StackBase)
    modules: list[Module]
    unloaded: list[Unloaded]  # newest first
    culprit: Module
    bugcheck_code: int
    bugcheck_parameters: tuple[int, int, int, int]
    fault_address: int
    system_time: datetime
    uptime_seconds: int
    placements: list[tuple[int, bytes, str]] = field(default_factory=list, repr=False)

    @property
    def is_64bit(self) -> bool:
        return self.arch in ("x64", "arm64")

    @property
    def layout(self) -> KernelLayout:
        return LAYOUTS[self.arch]


@dataclass
class KWorldDump:
    path: Path
    dump_type: int
    world: KWorld
    info: DumpInfo


class _Builder:
    def __init__(self, arch: str, seed: int, placement: str, ram_bytes: int) -> None:
        if arch not in LAYOUTS:
            raise ValueError(f"kworld builds x64, x86pae, x86 and arm64 worlds, not {arch!r}")
        self.arch = arch
        self.lay = LAYOUTS[arch]
        self.rng = random.Random(f"kworld-{arch}-{seed}")
        self.space: AddressSpace
        if arch == "arm64":
            self.space = Arm64AddressSpace(ram_bytes=ram_bytes, placement=placement, seed=seed)
        else:
            self.space = AddressSpace(arch, ram_bytes=ram_bytes, placement=placement, seed=seed)
        self.placements: list[tuple[int, bytes, str]] = []
        self.pool = self.lay.pool + self.rng.randrange(0x100) * 0x10000

    def place(self, va: int, data: bytes, what: str) -> None:
        self.placements.append((va, bytes(data), what))

    def alloc(self, size: int, align: int = 0x10) -> int:
        self.pool = (self.pool + align - 1) & ~(align - 1)
        va = self.pool
        self.pool += size
        return va

    def ptr(self, v: int) -> bytes:
        return struct.pack("<Q" if self.lay.ptr == 8 else "<I", v)

    def ustr(self, text: str) -> tuple[bytes, int]:
        """A UNICODE_STRING of ``text`` and its buffer, placed in the pool."""
        raw = text.encode("utf-16-le")
        buf = self.alloc(len(raw) + 2)
        self.place(buf, raw + b"\0\0", f"string {text}")
        return unicode_string(self.lay, len(raw), buf), buf


def _modules(b: _Builder, count: int, culprit: str | None) -> tuple[list[Module], Module]:
    lay, rng = b.lay, b.rng
    nt_base = lay.nt_base + rng.randrange(0x18) * 0x200000 if lay.ptr == 8 else lay.nt_base
    names = ["\\SystemRoot\\system32\\ntoskrnl.exe", "\\SystemRoot\\system32\\hal.dll"]
    inbox = rng.sample([n for n in INBOX_DRIVERS if n != culprit], max(0, count - 4))
    if culprit in INBOX_DRIVERS:  # an inbox culprit: loaded from the Windows folder like its peers
        inbox.append(culprit)
    names += [f"\\SystemRoot\\System32\\drivers\\{n}" for n in inbox]
    third = [culprit] if culprit and culprit not in INBOX_DRIVERS else []
    third += [n for n in rng.sample(THIRD_PARTY, 3) if n not in third][: 2 - len(third)]
    for n in third:
        folder = "\\SystemRoot\\System32\\drivers\\" if rng.random() < 0.5 else "\\??\\C:\\Program Files\\Vendor\\"
        names.append(folder + n)
    modules: list[Module] = []
    va = lay.driver_area + rng.randrange(0x10) * 0x100000
    for i, name in enumerate(names):
        if i == 0:
            base, size = nt_base, lay.nt_size
        elif i == 1:  # hal: just above nt on x64, just below it on x86
            size = 0x37000
            base = nt_base + lay.nt_size + 0x2A000 if lay.ptr == 8 else nt_base - size
        else:
            size = (rng.randrange(0x10, 0x200) * PAGE_SIZE) & ~0xFFF
            base, va = va, va + ((size + 0xFFFF) & ~0xFFFF) + 0x10000
        ts = 0x5F000000 + rng.randrange(0x8000000)
        checksum = rng.randrange(0x10000, size if size > 0x10000 else 0x20000)
        modules.append(Module(name, base, size, ts, checksum, b.alloc(lay.kldr_size)))
    wanted = culprit or third[0]
    culp = next(m for m in modules if m.base_name.lower() == wanted.lower())
    return modules, culp


def _place_modules(b: _Builder, modules: list[Module], head: int) -> None:
    lay = b.lay
    for i, m in enumerate(modules):
        _, full_va = b.ustr(m.name)
        entry = kldr_entry(
            lay,
            flink=modules[i + 1].entry_va if i + 1 < len(modules) else head,
            blink=modules[i - 1].entry_va if i else head,
            base=m.base,
            size=m.size,
            full_va=full_va,
            full_length=len(m.name.encode("utf-16-le")),
            base_length=len(m.base_name.encode("utf-16-le")),
            checksum=m.checksum,
            # the entry's TimeDateStamp is an older build's: the PE header in memory wins (what a debugger shows)
            timestamp=m.timestamp - 0x100,
        )
        b.place(m.entry_va, entry, f"KLDR entry {m.base_name}")
        b.place(m.base, pe_header(lay, m.timestamp, m.size, m.checksum), f"PE header {m.base_name}")
    b.place(head, b.ptr(modules[0].entry_va) + b.ptr(modules[-1].entry_va), "PsLoadedModuleList")


def _place_unloaded(b: _Builder, array_ptr_va: int, last_va: int) -> list[Unloaded]:
    lay, rng = b.lay, b.rng
    names = [*rng.sample(("WdBoot.sys", "hwpolicy.sys", "olddriver.sys", "dam.sys"), 2), "dump_diskdump.sys"]
    rng.shuffle(names)  # one name longer than the 12 characters a small dump keeps
    raw = bytearray(MI_UNLOADED_DRIVERS * lay.unloaded_size)
    out: list[Unloaded] = []
    start = lay.driver_area + 0x0800_0000 if lay.ptr == 8 else 0x91000000
    for i, name in enumerate(names):  # oldest first in the array
        us, _ = b.ustr(name)
        lo = start + i * 0x100000
        hi = lo + rng.randrange(4, 40) * PAGE_SIZE
        off = i * lay.unloaded_size
        raw[off : off + len(us)] = us
        fmt = "<QQQ" if lay.ptr == 8 else "<IIQ"
        struct.pack_into(fmt, raw, off + 2 * lay.ptr, lo, hi, 0x01DA_0000_0000_0000 + i * 10_000_000)
        out.insert(0, Unloaded(name, lo, hi))
    array = b.alloc(len(raw))
    b.place(array, bytes(raw), "MmUnloadedDrivers array")
    b.place(array_ptr_va, b.ptr(array), "MmUnloadedDrivers")
    b.place(last_va, struct.pack("<I", len(names)), "MmLastUnloadedDriver")
    return out


def _kdbg(b: _Builder, values: dict[str, int]) -> bytes:
    lay = b.lay
    k = bytearray(lay.kdbg_size)
    struct.pack_into("<4sI", k, 0x10, b"KDBG", lay.kdbg_size)
    for name, off in KDBG_POINTERS.items():
        struct.pack_into("<Q", k, off, sign_extend(values[name]))
    struct.pack_into("<H", k, 0x29C, lay.thread_kernel_stack)
    struct.pack_into("<H", k, 0x29E, lay.thread_initial_stack)
    struct.pack_into("<H", k, 0x2A0, lay.thread_apc_process)
    struct.pack_into("<H", k, 0x2A8, lay.size_eprocess)
    struct.pack_into("<H", k, 0x2B0, lay.size_prcb)
    struct.pack_into("<H", k, 0x2B4, lay.prcb_current_thread)
    struct.pack_into("<H", k, 0x2BE, lay.prcb_number)
    struct.pack_into("<H", k, 0x2C0, lay.size_ethread)
    struct.pack_into("<H", k, 0x338, lay.prcb_context)
    struct.pack_into("<II", k, 0x340, lay.thread_stack_limit, lay.thread_stack_base)
    return bytes(k)


def _context(arch: str, pc: int, sp: int, fp: int, extra: int, more: dict[str, int] | None = None) -> bytes:
    if arch == "arm64":
        regs = {"pc": pc, "sp": sp, "fp": fp, "x0": extra, "x1": 0xD1, "lr": pc + 0x40}
        return arm64_context({**regs, **(more or {})})
    if arch == "x64":
        return amd64_context({"rip": pc, "rsp": sp, "rbp": fp, "rax": extra, "rcx": 0xD1, **(more or {})})
    return x86_context({"eip": pc, "esp": sp, "ebp": fp, "eax": extra, "cs": 8, "ss": 0x10, **(more or {})})


def build_kworld(
    arch: str = "x64",
    *,
    seed: int = 0,
    bugcheck: int = 0xD1,
    culprit: str | None = None,
    build: int | None = None,
    processors: int = 2,
    encoded: bool = False,
    modules: int | None = None,
    system_time: datetime | None = None,
    uptime_seconds: int | None = None,
    ram_bytes: int = 32 << 20,
    placement: str = "scattered",
    stack_values: Sequence[int] = (),
    header_registers: dict[str, int] | None = None,
) -> KWorld:
    """A whole kernel world in an address space (not yet written; see :func:`write_kworld`).

    ``stack_values`` go into the crashing thread's stack from its third slot on, ``header_registers`` into the
    header CONTEXT (dumpsynth register names): pointers whose data-block windows a test wants to check."""
    if bugcheck not in BUGCHECKS:
        raise ValueError(f"bugcheck {bugcheck:#x} is not in the menu {sorted(hex(c) for c in BUGCHECKS)}")
    if encoded and arch not in ("x64", "arm64"):
        raise ValueError("only 64-bit kernels keep the KDBG encoded")
    if not 1 <= processors <= 64:
        raise ValueError("processors: 1..64")
    b = _Builder(arch, seed, placement, ram_bytes)
    lay, rng = b.lay, b.rng
    count = modules if modules is not None else rng.randrange(12, 25)
    if not 4 <= count <= len(INBOX_DRIVERS) + 4:
        raise ValueError(f"modules: 4..{len(INBOX_DRIVERS) + 4}")
    if culprit is not None and culprit.lower() in ("ntoskrnl.exe", "hal.dll"):
        raise ValueError("the culprit is a driver, not the kernel or the HAL")
    mods, culp = _modules(b, count, culprit)
    nt = mods[0]
    va = {name: nt.base + rva for name, rva in lay.rva.items()}  # nt's globals
    va["KernBase"] = nt.base
    _place_modules(b, mods, va["PsLoadedModuleList"])
    unloaded = _place_unloaded(b, va["MmUnloadedDrivers"], va["MmLastUnloadedDriver"])
    b.place(va["MmSpecialPoolTag"], struct.pack("<I", 0x6C6F6F50), "MmSpecialPoolTag")  # 'Pool'
    b.place(va["MmMaximumNonPagedPoolInBytes"], b.ptr(0x1_0000_0000 if lay.ptr == 8 else 0x1E000000), "MaxNPP")

    data_page = b.alloc(PAGE_SIZE, PAGE_SIZE)  # what the bug check's data address and a register point into
    b.place(data_page, bytes(range(256)) * 16, "pool page at the bugcheck's address")
    data_va = data_page + 0x88

    # process and threads
    process_va = b.alloc(lay.size_eprocess, 0x40)
    pid = rng.randrange(1, 0x400) * 4
    name = rng.choice(PROCESS_NAMES)
    proc = bytearray(lay.size_eprocess)
    proc[0] = 3  # Header.Type: ProcessObject
    proc[lay.process_dtb : lay.process_dtb + lay.ptr] = b.ptr(b.space.dtb)
    proc[lay.process_pid : lay.process_pid + lay.ptr] = b.ptr(pid)
    proc[lay.process_name : lay.process_name + len(name)] = name.encode()
    head = va["PsActiveProcessHead"]
    links = process_va + (0x448 if lay.ptr == 8 else 0xB8)  # EPROCESS.ActiveProcessLinks (one-process list)
    b.place(head, b.ptr(links) * 2, "PsActiveProcessHead")
    proc[links - process_va : links - process_va + 2 * lay.ptr] = b.ptr(head) * 2
    b.place(process_va, bytes(proc), "EPROCESS")

    crashing = rng.randrange(processors)
    code_addresses = [nt.base + lay.rva["KeBugCheckEx"]] + [m.base + 0x1000 + rng.randrange(0x800) for m in mods]
    fault_address = culp.base + 0x1000 + rng.randrange(0x10, 0x800)
    cpus: list[Cpu] = []
    prcb_area = nt.base + lay.rva["Prcb0"]
    tid_base = rng.randrange(0x40, 0x4000) * 4
    stack_area = (0xFFFFB88F_00000000 if lay.ptr == 8 else 0x9A000000) + rng.randrange(0x100) * 0x100000
    header_sp = header_pc = 0
    stack = b""
    for cpu in range(processors):
        prcb_va = prcb_area if cpu == 0 else b.alloc(lay.size_prcb + 0x180, PAGE_SIZE) + 0x180
        thread_va = b.alloc(lay.size_ethread + 0x80, 0x40) + 0x80
        ctx_va = b.alloc({"x64": 0x4D0, "arm64": 0x390}.get(arch, 0x2CC), 0x10)
        stack_base = stack_area + (cpu + 1) * 0x10000
        stack_limit = stack_base - lay.stack_size
        saved_sp = stack_base - (0x1800 if lay.ptr == 8 else 0xC00) - 8 * rng.randrange(16)
        pc = nt.base + lay.rva["KeBugCheckEx"] if cpu == crashing else nt.base + lay.rva["KiIdleLoop"]
        ctx = _context(arch, pc, saved_sp, saved_sp + 0x80, data_va)
        prcb = bytearray(lay.size_prcb)
        prcb[lay.prcb_current_thread : lay.prcb_current_thread + lay.ptr] = b.ptr(thread_va)
        prcb[lay.prcb_context : lay.prcb_context + lay.ptr] = b.ptr(ctx_va)
        struct.pack_into("<H" if lay.ptr == 8 else "<B", prcb, lay.prcb_number, cpu)
        thread = bytearray(lay.size_ethread)
        thread[0] = 6  # Header.Type: ThreadObject
        for off, v in (
            (lay.thread_initial_stack, stack_base - 0x30),
            (lay.thread_stack_limit, stack_limit),
            (lay.thread_stack_base, stack_base),
            (lay.thread_kernel_stack, saved_sp - 0x100),
            (lay.thread_apc_process, process_va),
            (lay.thread_cid, pid),
            (lay.thread_cid + lay.ptr, tid_base + 4 * cpu),
        ):
            thread[off : off + lay.ptr] = b.ptr(v)
        words = []
        for i in range((stack_base - saved_sp) // lay.ptr):
            r = rng.random()
            if i == 1 or (i % 6 == 3 and r < 0.6):
                words.append(rng.choice(code_addresses) if i != 1 else nt.base + lay.rva["KeBugCheckEx"] + 0x33)
            elif i == 9 and cpu == crashing:
                words.append(fault_address)  # the culprit's frame
            elif r < 0.3:
                words.append(saved_sp + lay.ptr * rng.randrange(0x100))
            else:
                words.append(rng.randrange(0x10000))
        if cpu == crashing:
            words[2 : 2 + len(stack_values)] = stack_values
        data = b"".join(b.ptr(w) for w in words)
        b.place(saved_sp, data, f"stack cpu{cpu}")
        b.place(prcb_va, bytes(prcb), f"KPRCB {cpu}")
        b.place(ctx_va, ctx, f"CONTEXT {cpu}")
        b.place(thread_va, bytes(thread), f"ETHREAD {cpu}")
        cpus.append(Cpu(prcb_va, bytes(prcb), ctx_va, ctx, saved_sp, thread_va, bytes(thread), stack_limit, stack_base))
        if cpu == crashing:
            header_sp, header_pc, stack = saved_sp + 0x40, pc, data
    b.place(va["KiProcessorBlock"], b"".join(b.ptr(c.prcb_va) for c in cpus), "KiProcessorBlock")

    # KDBG (encoded on request) and the code page a symbol-less decoder reads the keys from
    kdbg = _kdbg(b, va)
    stored, keys = kdbg, None
    if encoded and arch == "arm64":  # no x64 code pattern in an A64 image: decoders need the keys
        enc_va = nt.base + lay.rva["KdpDataBlockEncoded"]
        b.place(enc_va, b"\1", "KdpDataBlockEncoded")
        keys = (*DEFAULT_KEYS, enc_va)
        stored = encode_kdbg(kdbg, DEFAULT_KEYS[0], DEFAULT_KEYS[1], enc_va)
    elif encoded:
        code_va = nt.base + lay.rva["KdCopyDataBlock"]
        for p in kdcopy_pattern(code_va, va["KDBG"], DEFAULT_KEYS):
            b.place(*p)
        keys = (*DEFAULT_KEYS, code_va + 0x800)
        stored = encode_kdbg(kdbg, DEFAULT_KEYS[0], DEFAULT_KEYS[1], code_va + 0x800)
    b.place(va["KDBG"], stored, "KDBG")
    b.place(culp.base + 0x1000, bytes(rng.randrange(256) for _ in range(PAGE_SIZE)), f"code {culp.base_name}")
    b.place(nt.base + (lay.rva["KeBugCheckEx"] & ~0xFFF), b"\xcc" * PAGE_SIZE, "code KeBugCheckEx")

    params = _parameters(bugcheck, fault_address, data_va)
    when = system_time or datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(300 * 86400))
    uptime = uptime_seconds if uptime_seconds is not None else rng.randrange(600, 40 * 86400)
    fields = HeaderFields(
        minor_version=build or lay.build,
        ps_loaded_module_list=va["PsLoadedModuleList"],
        ps_active_process_head=va["PsActiveProcessHead"],
        kd_debugger_data_block=va["KDBG"],
        number_processors=processors,
        bugcheck_code=bugcheck,
        bugcheck_parameters=params,
        context=_context(arch, header_pc, header_sp, header_sp + 0x80, data_va, header_registers),
        system_time=when,
        system_uptime=uptime * 10_000_000,
        machine_image_type=ARM64_MACHINE if arch == "arm64" else None,
    )
    _map(b)
    cpu = cpus[crashing]
    return KWorld(
        arch=arch,
        seed=seed,
        build=build or lay.build,
        space=b.space,
        fields=fields,
        kdbg_va=va["KDBG"],
        kdbg=kdbg,
        kdbg_stored=stored,
        keys=keys,
        ps_loaded_module_list=va["PsLoadedModuleList"],
        processor_block=va["KiProcessorBlock"],
        cpus=cpus,
        crashing_cpu=crashing,
        process_va=process_va,
        process=bytes(proc),
        process_name=name,
        pid=pid,
        tid=tid_base + 4 * crashing,
        header_sp=header_sp,
        header_pc=header_pc,
        stack=stack[: cpu.stack_base - cpu.saved_sp],
        modules=mods,
        unloaded=unloaded,
        culprit=culp,
        bugcheck_code=bugcheck,
        bugcheck_parameters=params,
        fault_address=fault_address,
        system_time=when,
        uptime_seconds=uptime,
        placements=b.placements,
    )


def _parameters(code: int, pc: int, data_va: int) -> tuple[int, int, int, int]:
    """The four parameters of a menu bug check, with the culprit's code address where the reference puts it."""
    table = {
        0x0A: (data_va, 2, 0, pc),
        0x1E: (0xC0000005, pc, 0, data_va),
        0x3B: (0xC0000005, pc, data_va, 0),
        0x50: (data_va, 0, pc, 2),
        0x7E: (0xC0000005, pc, data_va, data_va + 0x100),
        0xD1: (data_va, 2, 0, pc),
    }
    params = table[code]
    assert params[BUGCHECKS[code][1] - 1] == pc
    return params


def _map(b: _Builder) -> None:
    """Page tables for every placed byte, then the bytes; two structures sharing bytes is a generator bug."""
    spans = sorted((va, va + len(data), what) for va, data, what in b.placements)
    for (_, end, what), (va, _, other) in itertools.pairwise(spans):
        if va < end:
            raise RuntimeError(f"kworld placed {other} at {va:#x} over {what}")
    map_placements(b.space, b.placements)


def write_kworld(
    path: os.PathLike[str] | str,
    arch: str = "x64",
    dump_type: int = 1,
    *,
    overwrite: bool = False,
    world: KWorld | None = None,
    **options: object,
) -> KWorldDump:
    """Build (or take) a world and write it as a Complete (1), Active (5) or Kernel bitmap (6) dump."""
    w = world if world is not None else build_kworld(arch, **options)  # type: ignore[arg-type]
    if dump_type not in (1, 5, 6):
        raise ValueError(f"kworld writes DumpType 1, 5 and 6, not {dump_type}")
    info = write_dump(path, w.space, dump_type, fields=w.fields, overwrite=overwrite)
    return KWorldDump(Path(path), dump_type, w, info)
