"""Constants of the synthetic kernel worlds (:mod:`.kworld`): per-architecture structure offsets and sizes, nt's
global variables (RVAs), the bug-check menu, module and process names, and the minimal PE header.

Every offset is written here from the spec (../shared/spec/kd-structures.md, dump-format.md) and the numbers the
Windows-written sample carries, never imported from dbgauto (style.md §E):

* KDDEBUGGER_DATA64 (kd-structures.md §2): KernBase 0x18, PsLoadedModuleList 0x48, PsActiveProcessHead 0x50,
  MmMaximumNonPagedPoolInBytes 0x100, KiProcessorBlock 0x218, MmUnloadedDrivers 0x220, MmLastUnloadedDriver
  0x228, MmSpecialPoolTag 0x238; u16 OffsetKThreadKernelStack 0x29C, OffsetKThreadInitialStack 0x29E,
  OffsetKThreadApcProcess 0x2A0, SizeEProcess 0x2A8, SizePrcb 0x2B0, OffsetPrcbCurrentThread 0x2B4,
  OffsetPrcbNumber 0x2BE, SizeEThread 0x2C0, OffsetPrcbContext 0x338; u32 OffsetKThreadStackLimit 0x340,
  OffsetKThreadStackBase 0x344. 32-bit kernels store pointers sign-extended to 64 bits.
* x64 19041 values: those of ../shared/dumps/triage_x64.dmp's KDBG (Size 0x380, SizePrcb 0xAF00, SizeEThread
  0x898, SizeEProcess 0xA40, CurrentThread 0x8, Number 0x24, Context 0x85C0, ApcProcess 0xB8, StackLimit 0x30,
  StackBase 0x38, InitialStack 0x28) and its observed EPROCESS/ETHREAD fields (UniqueProcessId 0x440,
  ImageFileName 0x5A8, Cid 0x478; observed-triage-x64.md). KernelStack 0x58 (public KTHREAD layout).
* x86 (Windows 7 SP1 build 7601 shaped): SizePrcb 0x3628, SizeEThread 0x2B8, SizeEProcess 0x2C0, CurrentThread
  0x4, ApcProcess 0x50, Context 0x3300, Number 0x3CC, StackLimit 0x2C, StackBase 0x190, InitialStack 0x28,
  KernelStack 0x30; EPROCESS UniqueProcessId 0xB4, ImageFileName 0x16C, ETHREAD Cid 0x22C (public layouts).
* ARM64 (MachineImageType 0xAA64, PE machine 0xAA64): Windows 11 24H2 build 26100's real ARM64 offsets where the
  public symbols give them, from the ARM64 ntoskrnl public-symbol headers in the ntdiff/headers repository
  (``Win11_2409_24H2/ARM64/System32/ntoskrnl.exe/Standalone/_KPRCB.h``, ``_ETHREAD.h``, ``_EPROCESS.h``):
  KPRCB CurrentThread 0x8, Number 0x24 (ULONG; LegacyNumber is the byte at 0); KTHREAD InitialStack 0x28,
  StackLimit 0x30, StackBase 0x38, KernelStack 0x58, ApcState 0x90 so ApcState.Process 0xB0; ETHREAD Cid 0x4E8,
  sizeof(ETHREAD) 0x768; EPROCESS UniqueProcessId 0x1C0, ImageFileName 0x328, sizeof(EPROCESS) 0x900;
  KPROCESS.DirectoryTableBase 0x28. The public ARM64 KPRCB stops at 0x800 (ProcessorState 0x40, its ContextFrame
  at +0x340, so ProcessorState.ContextFrame is KPRCB+0x380) and lacks the ``Context`` pointer, so SizePrcb 0x6C80
  and OffsetPrcbContext 0x6B00 stay plausible values of our own; a converter reads both from the KDBG. The
  _KLDR_DATA_TABLE_ENTRY is x64's live layout: it holds only LIST_ENTRYs, pointers, UNICODE_STRINGs, ULONGs and
  USHORTs, aligned alike under the ARM64 and x64 LLP64 ABIs. Addresses are kernel-half AArch64 VAs (bit 47 set,
  canonical like x64's).
* Loaded modules: the live Windows 10 x64 ``_KLDR_DATA_TABLE_ENTRY`` (DllBase 0x30, SizeOfImage 0x40, FullDllName
  0x48, BaseDllName 0x58, CheckSum 0x78, TimeDateStamp 0x9C) and the 32-bit one (DllBase 0x18, SizeOfImage 0x20,
  FullDllName 0x24, BaseDllName 0x2C, CheckSum 0x40, TimeDateStamp 0x44). UNLOADED_DRIVERS: 0x28 (x64) / 0x18.
* PE header: e_lfanew 0x3C; FileHeader.TimeDateStamp at PE+8; OptionalHeader (PE+0x18) SizeOfImage +0x38,
  CheckSum +0x40.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dbgauto_testkit.dumpsynth import PAGE_SIZE

# bug check code -> (name, 1-based parameter that holds the faulting code address)
BUGCHECKS: dict[int, tuple[str, int]] = {
    0x0A: ("IRQL_NOT_LESS_OR_EQUAL", 4),
    0x1E: ("KMODE_EXCEPTION_NOT_HANDLED", 2),
    0x3B: ("SYSTEM_SERVICE_EXCEPTION", 2),
    0x50: ("PAGE_FAULT_IN_NONPAGED_AREA", 3),
    0x7E: ("SYSTEM_THREAD_EXCEPTION_NOT_HANDLED", 2),
    0xD1: ("DRIVER_IRQL_NOT_LESS_OR_EQUAL", 4),
}

_INBOX_NAMES = """
    ACPI.sys Wdf01000.sys WDFLDR.SYS volmgr.sys disk.sys CLASSPNP.SYS Ntfs.sys tcpip.sys NETIO.SYS
    ndis.sys fltmgr.sys storport.sys pci.sys partmgr.sys ksecdd.sys cng.sys volsnap.sys mountmgr.sys
    afd.sys http.sys usbhub3.sys USBXHCI.SYS i8042prt.sys kbdclass.sys mouclass.sys dxgkrnl.sys
    watchdog.sys rdbss.sys
"""
INBOX_DRIVERS = tuple(_INBOX_NAMES.split())
THIRD_PARTY = ("acmefilt.sys", "vendornet.sys", "fastdisk.sys", "gpuhelper.sys", "crashy.sys")
PROCESS_NAMES = ("System", "svchost.exe", "explorer.exe", "MsMpEng.exe", "backupsvc.exe")


@dataclass(frozen=True)
class KernelLayout:
    """The per-architecture constants (see the module docstring for their sources)."""

    ptr: int
    build: int
    kdbg_size: int
    size_prcb: int
    size_ethread: int
    size_eprocess: int
    prcb_current_thread: int
    prcb_number: int
    prcb_context: int
    thread_apc_process: int
    thread_stack_limit: int
    thread_stack_base: int
    thread_initial_stack: int
    thread_kernel_stack: int
    thread_cid: int
    process_dtb: int
    process_pid: int
    process_name: int
    kldr_size: int
    kldr: dict[str, int]
    unloaded_size: int
    stack_size: int
    nt_base: int
    nt_size: int
    driver_area: int
    pool: int
    pe_machine: int
    pe_magic: int
    rva: dict[str, int]  # nt's global variables and code, relative to its base


X64 = KernelLayout(
    ptr=8,
    build=19041,
    kdbg_size=0x380,
    size_prcb=0xAF00,
    size_ethread=0x898,
    size_eprocess=0xA40,
    prcb_current_thread=0x8,
    prcb_number=0x24,
    prcb_context=0x85C0,
    thread_apc_process=0xB8,
    thread_stack_limit=0x30,
    thread_stack_base=0x38,
    thread_initial_stack=0x28,
    thread_kernel_stack=0x58,
    thread_cid=0x478,
    process_dtb=0x28,
    process_pid=0x440,
    process_name=0x5A8,
    kldr_size=0xA0,
    kldr={"base": 0x30, "size": 0x40, "full": 0x48, "name": 0x58, "checksum": 0x78, "timestamp": 0x9C},
    unloaded_size=0x28,
    stack_size=0x6000,
    nt_base=0xFFFFF803_1E000000,
    nt_size=0x1046000,
    driver_area=0xFFFFF803_24000000,
    pool=0xFFFFC10B_40000000,
    pe_machine=0x8664,
    pe_magic=0x20B,
    rva={  # the 19041 sample's KDBG, PsLoadedModuleList, KiProcessorBlock, MmUnloadedDrivers, ... (nt + RVA)
        "KDBG": 0xC00B20,
        "PsLoadedModuleList": 0xC2A390,
        "KiProcessorBlock": 0xCFDC80,
        "MmUnloadedDrivers": 0xC2A308,
        "MmLastUnloadedDriver": 0xC2A310,
        "PsActiveProcessHead": 0xC1E0C0,
        "MmSpecialPoolTag": 0xC2A320,
        "MmMaximumNonPagedPoolInBytes": 0xC2A328,
        "Prcb0": 0xD00000,  # KiInitialPCR's PRCB lives in nt's data
        "KeBugCheckEx": 0x3F5E10,
        "KiIdleLoop": 0x1F4A30,
        "KdCopyDataBlock": 0x20F000,  # the page with the code pattern an encoded KDBG's decoder scans for
    },
)
X86 = KernelLayout(
    ptr=4,
    build=7601,
    kdbg_size=0x360,
    size_prcb=0x3628,
    size_ethread=0x2B8,
    size_eprocess=0x2C0,
    prcb_current_thread=0x4,
    prcb_number=0x3CC,
    prcb_context=0x3300,
    thread_apc_process=0x50,
    thread_stack_limit=0x2C,
    thread_stack_base=0x190,
    thread_initial_stack=0x28,
    thread_kernel_stack=0x30,
    thread_cid=0x22C,
    process_dtb=0x18,
    process_pid=0xB4,
    process_name=0x16C,
    kldr_size=0x48,
    kldr={"base": 0x18, "size": 0x20, "full": 0x24, "name": 0x2C, "checksum": 0x40, "timestamp": 0x44},
    unloaded_size=0x18,
    stack_size=0x3000,
    nt_base=0x82A00000,
    nt_size=0x410000,
    driver_area=0x8B200000,
    pool=0x85000000,
    pe_machine=0x14C,
    pe_magic=0x10B,
    rva={  # chosen inside a 4 MiB ntkrnlpa image, data after code
        "KDBG": 0x16EC28,
        "PsLoadedModuleList": 0x17E850,
        "KiProcessorBlock": 0x17F800,  # room for 64 pointers before MmUnloadedDrivers
        "MmUnloadedDrivers": 0x17FA00,
        "MmLastUnloadedDriver": 0x17FA04,
        "PsActiveProcessHead": 0x175E98,
        "MmSpecialPoolTag": 0x17FA08,
        "MmMaximumNonPagedPoolInBytes": 0x17FA0C,
        "Prcb0": 0x15D120,
        "KeBugCheckEx": 0x0F1234,
        "KiIdleLoop": 0x0B7C30,
        "KdCopyDataBlock": 0x0C3000,
    },
)
ARM64 = KernelLayout(  # Windows 11 24H2 26100 ARM64 (module docstring: sources, and which values are our own)
    ptr=8,
    build=26100,
    kdbg_size=0x380,
    size_prcb=0x6C80,  # own value (the public ARM64 KPRCB is truncated at 0x800)
    size_ethread=0x768,
    size_eprocess=0x900,
    prcb_current_thread=0x8,
    prcb_number=0x24,
    prcb_context=0x6B00,  # own value (KPRCB.Context is not in the public ARM64 KPRCB)
    thread_apc_process=0xB0,
    thread_stack_limit=0x30,
    thread_stack_base=0x38,
    thread_initial_stack=0x28,
    thread_kernel_stack=0x58,
    thread_cid=0x4E8,
    process_dtb=0x28,
    process_pid=0x1C0,
    process_name=0x328,
    kldr_size=0xA0,
    kldr={"base": 0x30, "size": 0x40, "full": 0x48, "name": 0x58, "checksum": 0x78, "timestamp": 0x9C},
    unloaded_size=0x28,
    stack_size=0x6000,
    nt_base=0xFFFFF800_5C800000,
    nt_size=0xD46000,
    driver_area=0xFFFFF800_64000000,
    pool=0xFFFFB50A_40000000,
    pe_machine=0xAA64,
    pe_magic=0x20B,
    rva={
        "KDBG": 0xA06B30,
        "PsLoadedModuleList": 0xCDB1C0,
        "KiProcessorBlock": 0xC2FD00,
        "MmUnloadedDrivers": 0xCDB308,
        "MmLastUnloadedDriver": 0xCDB310,
        "PsActiveProcessHead": 0xC1E0C0,
        "MmSpecialPoolTag": 0xCDB320,
        "MmMaximumNonPagedPoolInBytes": 0xCDB328,
        "Prcb0": 0xC40000,
        "KeBugCheckEx": 0x4B2A50,
        "KiIdleLoop": 0x1A3C10,
        "KdCopyDataBlock": 0x20F000,
        "KdpDataBlockEncoded": 0xC2F100,  # where an encoded ARM64 world's flag byte lives (keys only, no scan)
    },
)
LAYOUTS = {"x64": X64, "x86pae": X86, "x86": X86, "arm64": ARM64}
MI_UNLOADED_DRIVERS = 50
KDBG_POINTERS = {
    "KernBase": 0x18,
    "PsLoadedModuleList": 0x48,
    "PsActiveProcessHead": 0x50,
    "MmMaximumNonPagedPoolInBytes": 0x100,
    "KiProcessorBlock": 0x218,
    "MmUnloadedDrivers": 0x220,
    "MmLastUnloadedDriver": 0x228,
    "MmSpecialPoolTag": 0x238,
}


def sign_extend(v: int) -> int:
    """A 32-bit kernel VA as KDDEBUGGER_DATA64 keeps it (sign-extended)."""
    return v | 0xFFFFFFFF_00000000 if 0x80000000 <= v <= 0xFFFFFFFF else v


def unicode_string(lay: KernelLayout, length: int, buffer: int) -> bytes:
    """A UNICODE_STRING (Length, MaximumLength = Length + 2, Buffer) in the architecture's pointer size."""
    if lay.ptr == 8:
        return struct.pack("<HH4xQ", length, length + 2, buffer)
    return struct.pack("<HHI", length, length + 2, buffer)


def kldr_entry(
    lay: KernelLayout,
    *,
    flink: int,
    blink: int,
    base: int,
    size: int,
    full_va: int,
    full_length: int,
    base_length: int,
    checksum: int,
    timestamp: int,
) -> bytes:
    """One _KLDR_DATA_TABLE_ENTRY; BaseDllName points at the tail of FullDllName's buffer, as in the kernel."""
    e = bytearray(lay.kldr_size)
    k, word = lay.kldr, "<Q" if lay.ptr == 8 else "<I"
    struct.pack_into(word, e, 0, flink)
    struct.pack_into(word, e, lay.ptr, blink)
    struct.pack_into(word, e, k["base"], base)
    struct.pack_into("<I", e, k["size"], size)
    e[k["full"] : k["full"] + 2 * lay.ptr] = unicode_string(lay, full_length, full_va)
    e[k["name"] : k["name"] + 2 * lay.ptr] = unicode_string(lay, base_length, full_va + full_length - base_length)
    struct.pack_into("<I", e, k["checksum"], checksum)
    struct.pack_into("<I", e, k["timestamp"], timestamp)
    if lay.ptr == 8:
        struct.pack_into("<IH", e, 0x68, 0x49104000, 1)  # Flags, LoadCount: plausible values
        struct.pack_into("<I", e, 0x98, size)  # SizeOfImageNotRounded
    return bytes(e)


def pe_header(lay: KernelLayout, timestamp: int, size: int, checksum: int) -> bytes:
    """The first 0x400 bytes of an image: what a reader needs for TimeDateStamp, SizeOfImage and CheckSum."""
    page = bytearray(0x400)
    page[:2] = b"MZ"
    struct.pack_into("<I", page, 0x3C, 0xF8)
    page[0xF8:0xFC] = b"PE\0\0"
    opt_size = 0xF0 if lay.ptr == 8 else 0xE0
    struct.pack_into("<HHIIIHH", page, 0xFC, lay.pe_machine, 4, timestamp, 0, 0, opt_size, 0x22)
    opt = 0xF8 + 0x18
    struct.pack_into("<H", page, opt, lay.pe_magic)
    struct.pack_into("<I", page, opt + 0x20, PAGE_SIZE)  # SectionAlignment
    struct.pack_into("<I", page, opt + 0x24, 0x200)  # FileAlignment
    struct.pack_into("<I", page, opt + 0x38, size)
    struct.pack_into("<I", page, opt + 0x3C, 0x400)  # SizeOfHeaders
    struct.pack_into("<I", page, opt + 0x40, checksum)
    struct.pack_into("<H", page, opt + 0x44, 1)  # Subsystem: native
    return bytes(page)
