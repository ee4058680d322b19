"""A kernel plausible enough for MemProcFS's VMM to initialise on a synthetic world (x64 and ARM64).

What VMM (MemProcFS 5.x, ``vmm/vmmwininit.c`` ``VmmWinInit_TryInitialize``) checks, in order, and what this
module gives the world for it (facts read from its public source; no code of it is used here):

1. **The header's DTB** (``VmmWinInit_DTB_Validate``): among the kernel-half top-level entries a self-reference
   (x64: ``(e & 0x0000fffffffff083) == dtb | 3``; ARM64: ``(e & 0x0063fffffffff073) == dtb | 0x0060000000000003``)
   and at least 6 valid supervisor table entries (x64: ``(e & 0x8000000000000087) == 3``; ARM64: ``(e &
   0x0060000000000071) == 0x0060000000000001``, i.e. bits 53 and 54 set as Windows sets them in its level-0
   table descriptors); more than 0x40 empty entries in each half; on ARM64 entry 0 (user VAs below 512 GiB)
   must be such a table too. We add the x64 self-map (index 0x1ED), stamped pages in enough kernel slots, a user
   page in slot 0, and set bits 53/54 on the ARM64 level-0 table descriptors (bits the Arm ARM makes IGNORED in
   a table descriptor, so no translation changes).
2. **ntoskrnl's base** (``VmmWinInit_FindNtosScanHint64``): scanning back from the header's PsActiveProcessHead
   in 2 MiB steps for a page with ``MZ``, a PE header within 0x800, the 8 bytes ``POOLCODE`` at an 8-aligned
   offset of that page (a section name) and an export directory whose Name reads ``ntoskrnl.exe``.
3. **The System EPROCESS**: the export ``PsInitialSystemProcess`` (``PE_GetThunkInfoEAT``: every name, RVA and
   ordinal array inside the export directory's range).
4. **EPROCESS offsets without symbols** (``vmmwin.c`` ``VmmWinProcess_OffsetLocator64``): State 0x4 = 0 and
   DirectoryTableBase 0x28 in System; ImageFileName ``System``; UniqueProcessId followed by ActiveProcessLinks,
   whose next entry is ``Registry`` or ``smss.exe`` and points back; smss's InheritedFromUniqueProcessId = 4
   between the links and the name; smss's Peb (0x280-0x580, System's zero) a page-aligned user VA that translates
   to a page that is not ``MZ``; an ObjectTable pointer in [Name-0xE0, Name-0x20) with pool tag ``Obtb`` at
   pointer-0x10+4; smss's SeAuditProcessCreationInfo in [Peb+0x58, Peb+0x90) pointing at a UNICODE_STRING
   whose buffer follows it and reads ``\\Device\\``; ExitStatus 0x103 just before a kernel pointer (VadRoot).
   x64 worlds use Windows 10 19041 x64's public _EPROCESS offsets (``EPROCESS``); ARM64 worlds use Windows 11
   24H2 (26100) ARM64's (``EPROCESS_ARM64``, from the ARM64 ntoskrnl public-symbol headers in the ntdiff/headers
   repository, ``Win11_2409_24H2/ARM64/System32/ntoskrnl.exe/Standalone/_EPROCESS.h``), which satisfy every rule
   above (Peb 0x2D0 in range, WoW64Process = Peb + 0x30 = 0x300, ObjectTable in [Name-0xE0, Name-0x20), ...).
5. **More than 10 entries** in the process list (``VmmWinProcess_Enum64`` returns ``cProc > 10``): 12 processes.
6. The version from smss's PEB (OSMajorVersion 0x118, OSMinorVersion 0x11C, OSBuildNumber 0x120).

API::

    furnish_vmm_kernel(space, *, build=22621, nt_base=None, pool=None) -> VmmKernel
        # adds all of the above to ``space`` (an x64 AddressSpace or an Arm64AddressSpace); call it after the
        # caller's own mappings (ARM64 level-0 descriptors made later do not get bits 53/54, which only VMM's
        # "6 valid entries" count looks at). Pass ``kernel.header_fields(**more)`` to the dump writer.
    VmmKernel(nt_base, nt_size, system_eprocess, ps_active_process_head, ps_loaded_module_list, processes,
              build, stamped)   # processes: ((pid, name, eprocess_va, peb_va), ...); stamped: kernel VAs
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .header import HeaderFields
from .paging import PAGE_4K, AddressSpace, Arch
from .physmem import pattern_page

__all__ = ["EPROCESS", "EPROCESS_ARM64", "VmmKernel", "furnish_vmm_kernel"]

# Windows 10 19041 x64 _EPROCESS (public symbols, as every volatility3 ISF for 19041 lists them)
EPROCESS: Final = {
    "State": 0x4,  # KPROCESS.Header.SignalState (dword)
    "DirectoryTableBase": 0x28,
    "UniqueProcessId": 0x440,
    "ActiveProcessLinks": 0x448,
    "InheritedFromUniqueProcessId": 0x540,
    "Peb": 0x550,
    "ObjectTable": 0x570,
    "ImageFileName": 0x5A8,
    "SeAuditProcessCreationInfo": 0x5C0,
    "ExitStatus": 0x7D4,
    "VadRoot": 0x7D8,
}
# Windows 11 24H2 (26100) ARM64 _EPROCESS (ntdiff/headers, path in the module docstring): the same fields
EPROCESS_ARM64: Final = {
    "State": 0x4,
    "DirectoryTableBase": 0x28,  # KPROCESS.DirectoryTableBase, 0x28 in every KPROCESS layout, ARM64 included
    "UniqueProcessId": 0x1C0,
    "ActiveProcessLinks": 0x1C8,
    "InheritedFromUniqueProcessId": 0x2C0,
    "Peb": 0x2D0,
    "ObjectTable": 0x2F0,
    "ImageFileName": 0x328,
    "SeAuditProcessCreationInfo": 0x340,
    "ExitStatus": 0x614,
    "VadRoot": 0x618,
}
_EPROCESS_PAGE_OFFSET: Final = 0x80  # 16-aligned, and 0x800 bytes (VMM's read) stay in the page
_PROCESSES: Final = (
    (4, "System", 0),
    (0x6C, "Registry", 4),
    (0x1B0, "smss.exe", 4),
    (0x248, "csrss.exe", 0x238),
    (0x29C, "wininit.exe", 0x238),
    (0x2A4, "csrss.exe", 0x294),
    (0x308, "winlogon.exe", 0x294),
    (0x320, "services.exe", 0x29C),
    (0x33C, "lsass.exe", 0x29C),
    (0x3E8, "svchost.exe", 0x320),
    (0x410, "svchost.exe", 0x320),
    (0x1234, "explorer.exe", 0x1200),
)
_X64_SELF_MAP: Final = 0x1ED
_ARM64_TABLE_BITS: Final = (1 << 53) | (1 << 54)
_NT_RVA: Final = {"exports": 0x2000, "data": 0x10000}
_DATA_RVA: Final = {
    "PsInitialSystemProcess": 0x0,
    "PsActiveProcessHead": 0x10,
    "PsLoadedModuleList": 0x20,
    "NtBuildNumber": 0x30,
}
_USER_PEB_BASE: Final = 0x0000_0032_5A3F_0000  # level-0 / PML4 slot 0 (VA < 512 GiB)


@dataclass(frozen=True)
class VmmKernel:
    """Where the furnished kernel lives (all kernel VAs), for headers and test expectations."""

    nt_base: int
    nt_size: int
    system_eprocess: int
    ps_active_process_head: int
    ps_loaded_module_list: int
    processes: tuple[tuple[int, str, int, int], ...]  # (pid, name, EPROCESS va, PEB va or 0)
    build: int
    stamped: tuple[int, ...]  # kernel VAs of the pages stamped to fill top-level slots
    eprocess: dict[str, int]  # the _EPROCESS offsets the world used

    def header_fields(self, **more: object) -> HeaderFields:
        """Header fields naming this kernel (VMM's nt hint is PsActiveProcessHead)."""
        values: dict[str, object] = {
            "minor_version": self.build,
            "ps_active_process_head": self.ps_active_process_head,
            "ps_loaded_module_list": self.ps_loaded_module_list,
            "kd_debugger_data_block": self.nt_base + _NT_RVA["data"] + 0x800,
            **more,
        }
        return HeaderFields(**values)  # type: ignore[arg-type]


def _is_arm64(space: AddressSpace) -> bool:
    return getattr(space, "machine", None) == 0xAA64


def _pe_header(machine: int, nt_size: int, exports: tuple[int, int]) -> bytes:
    """A PE32+ header page: two sections, the second named POOLCODE (at offset 0x230, 8-aligned)."""
    page = bytearray(PAGE_4K)
    page[:2] = b"MZ"
    struct.pack_into("<I", page, 0x3C, 0x100)
    page[0x100:0x104] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", page, 0x104, machine, 2, 0x5F3E2B1A, 0, 0, 0xF0, 0x22)
    opt = 0x118
    struct.pack_into("<HBB", page, opt, 0x20B, 14, 0)
    struct.pack_into("<I", page, opt + 0x20, PAGE_4K)  # SectionAlignment
    struct.pack_into("<I", page, opt + 0x24, 0x200)  # FileAlignment
    struct.pack_into("<I", page, opt + 0x38, nt_size)  # SizeOfImage
    struct.pack_into("<I", page, opt + 0x3C, PAGE_4K)  # SizeOfHeaders
    struct.pack_into("<H", page, opt + 0x44, 1)  # Subsystem: native
    struct.pack_into("<I", page, opt + 0x6C, 16)  # NumberOfRvaAndSizes
    struct.pack_into("<II", page, opt + 0x70, *exports)  # DataDirectory[EXPORT]
    sections = opt + 0xF0
    assert sections == 0x208
    for i, (name, rva, size) in enumerate(((b".text", 0x1000, 0x400000), (b"POOLCODE", 0x401000, 0x10000))):
        hdr = sections + 0x28 * i
        page[hdr : hdr + 8] = name.ljust(8, b"\0")
        struct.pack_into("<IIII", page, hdr + 8, size, rva, size, rva)
        struct.pack_into("<I", page, hdr + 0x24, 0x60000020)
    assert page[0x230:0x238] == b"POOLCODE"
    return bytes(page)


def _export_directory(base_rva: int, names: dict[str, int]) -> bytes:
    """IMAGE_EXPORT_DIRECTORY with every array and string inside it (what VMM's EAT reader requires)."""
    blob = bytearray(0x400)
    ordered = sorted(names)
    n = len(ordered)
    functions, name_ptrs, ordinals, strings = 0x40, 0x80, 0xC0, 0x100
    module = 0x300
    struct.pack_into(
        "<IIHHIIIIIII",
        blob,
        0,
        0,
        0x5F3E2B1A,
        0,
        0,
        base_rva + module,
        1,
        n,
        n,
        base_rva + functions,
        base_rva + name_ptrs,
        base_rva + ordinals,
    )
    pos = strings
    for i, name in enumerate(ordered):
        struct.pack_into("<I", blob, functions + 4 * i, names[name])
        struct.pack_into("<I", blob, name_ptrs + 4 * i, base_rva + pos)
        struct.pack_into("<H", blob, ordinals + 2 * i, i)
        blob[pos : pos + len(name) + 1] = name.encode() + b"\0"
        pos += len(name) + 1
    blob[module : module + 13] = b"ntoskrnl.exe\0"
    return bytes(blob)


def _unicode_blob(va: int, text: str) -> bytes:
    """UNICODE_STRING followed by its buffer (OBJECT_NAME_INFORMATION as SeAuditProcessCreationInfo holds it)."""
    data = text.encode("utf-16-le")
    return struct.pack("<HH4xQ", len(data), len(data) + 2, va + 0x10) + data + b"\0\0"


def _kernel_slots(space: AddressSpace, need: int, avoid: set[int]) -> list[int]:
    """Stamp one page in kernel top-level slots until ``need`` slots hold a table; returns the stamped VAs."""
    top = space.top_table
    used = {i for i in range(256, 512) if struct.unpack("<Q", space.memory.read(top + 8 * i, 8))[0] & 1}
    stamped = []
    for index in (0x100, 0x111, 0x122, 0x133, 0x144, 0x155, 0x166, 0x177, 0x188):
        if len(used) >= need:
            break
        if index in used or index in avoid:
            continue
        va = 0xFFFF_0000_0000_0000 | (index << 39) | 0x1234_5000
        space.map(va, pattern_page(index, b"SLOT"))
        used.add(index)
        stamped.append(va)
    return stamped


def _x64_user_bits(space: AddressSpace) -> None:
    """Set U/S (bit 2) on every entry under PML4 slots 0-255, as Windows has it on user pages (VMM's user-only
    walk of a process needs it at every level)."""

    def walk(table: int, level: int) -> None:
        for index in range(512) if level else ():
            entry_pa = table + 8 * index
            entry = struct.unpack("<Q", space.memory.read(entry_pa, 8))[0]
            if not entry & 1:
                continue
            space.write_physical(entry_pa, struct.pack("<Q", entry | 0x4), allow_tables=True)
            if level > 1 and not entry & 0x80:
                walk(entry & 0x000F_FFFF_FFFF_F000, level - 1)

    top = space.top_table
    for index in range(256):
        entry = struct.unpack("<Q", space.memory.read(top + 8 * index, 8))[0]
        if entry & 1:
            space.write_physical(top + 8 * index, struct.pack("<Q", entry | 0x4), allow_tables=True)
            walk(entry & 0x000F_FFFF_FFFF_F000, 3)


def furnish_vmm_kernel(
    space: AddressSpace,
    *,
    build: int = 22621,
    nt_base: int | None = None,
    pool: int | None = None,
) -> VmmKernel:
    """Add ntoskrnl's header/exports/data, 12 linked EPROCESSes, PEBs and a VMM-acceptable top table."""
    if space.arch is not Arch.X64:
        raise ValueError("VMM worlds are 64-bit (x64 or ARM64 tables)")
    arm64 = _is_arm64(space)
    ep = EPROCESS_ARM64 if arm64 else EPROCESS
    nt_base = nt_base or (0xFFFF_F800_5C80_0000 if arm64 else 0xFFFF_F803_1E00_0000)
    pool = pool or (0xFFFF_B50A_4000_0000 if arm64 else 0xFFFF_C10B_4000_0000)
    nt_size = 0x0080_0000
    data = nt_base + _NT_RVA["data"]
    rva_of = {name: _NT_RVA["data"] + off for name, off in _DATA_RVA.items()}
    space.map(nt_base, _pe_header(0xAA64 if arm64 else 0x8664, nt_size, (_NT_RVA["exports"], 0x400)))
    space.map(nt_base + _NT_RVA["exports"], _export_directory(_NT_RVA["exports"], rva_of), size=2 * PAGE_4K)

    eps = [pool + 0x1_0000 + i * PAGE_4K + _EPROCESS_PAGE_OFFSET for i in range(len(_PROCESSES))]
    head = data + _DATA_RVA["PsActiveProcessHead"]
    links = [e + ep["ActiveProcessLinks"] for e in eps]
    ring = [head, *links]
    object_table = pool + 0x10  # pool header at pool: tag "Obtb" at +4
    vad = pool + 0x800
    space.map(pool, struct.pack("<I4s", 0x0203_0010, b"Obtb"), size=PAGE_4K)
    processes = []
    for i, (pid, name, ppid) in enumerate(_PROCESSES):
        ep_va = eps[i]
        page = bytearray(PAGE_4K)
        o = _EPROCESS_PAGE_OFFSET
        struct.pack_into("<Q", page, o + ep["DirectoryTableBase"], space.dtb)
        struct.pack_into("<Q", page, o + ep["UniqueProcessId"], pid)
        j = i + 1
        struct.pack_into("<QQ", page, o + ep["ActiveProcessLinks"], ring[(j + 1) % len(ring)], ring[j - 1])
        struct.pack_into("<Q", page, o + ep["InheritedFromUniqueProcessId"], ppid)
        peb = 0 if pid == 4 else _USER_PEB_BASE + i * PAGE_4K
        struct.pack_into("<Q", page, o + ep["Peb"], peb)
        struct.pack_into("<Q", page, o + ep["ObjectTable"], object_table if pid == 4 else 0)
        page[o + ep["ImageFileName"] : o + ep["ImageFileName"] + 15] = name.encode()[:14].ljust(15, b"\0")
        audit = pool + 0x8000 + i * 0x100
        struct.pack_into("<Q", page, o + ep["SeAuditProcessCreationInfo"], audit)
        struct.pack_into("<I", page, o + ep["ExitStatus"], 0x103)
        struct.pack_into("<Q", page, o + ep["VadRoot"], vad if pid == 4 else 0)
        space.map(ep_va - _EPROCESS_PAGE_OFFSET, bytes(page))
        path = "System" if pid == 4 else rf"\Device\HarddiskVolume3\Windows\System32\{name}"
        space.map(audit, _unicode_blob(audit, path))
        if peb:
            peb_page = bytearray(PAGE_4K)
            struct.pack_into("<IIH", peb_page, 0x118, 10, 0, build)  # OSMajor/Minor/BuildNumber
            space.map(peb, bytes(peb_page))
        processes.append((pid, name, ep_va, peb))
    data_page = bytearray(PAGE_4K)
    struct.pack_into("<Q", data_page, _DATA_RVA["PsInitialSystemProcess"], eps[0])
    struct.pack_into("<QQ", data_page, _DATA_RVA["PsActiveProcessHead"], links[0], links[-1])
    mods = data + _DATA_RVA["PsLoadedModuleList"]
    struct.pack_into("<QQ", data_page, _DATA_RVA["PsLoadedModuleList"], mods, mods)  # empty list
    struct.pack_into("<I", data_page, _DATA_RVA["NtBuildNumber"], 0xF000_0000 | build)
    space.map(data, bytes(data_page))

    top = space.top_table
    self_map = getattr(space, "self_map_index", None) if arm64 else _X64_SELF_MAP
    stamped = _kernel_slots(space, 7, {self_map} if self_map is not None else set())
    if not arm64:
        space.write_physical(top + 8 * _X64_SELF_MAP, struct.pack("<Q", top | 0x63), allow_tables=True)
        _x64_user_bits(space)
    else:
        for index in (0, *range(256, 512)):
            entry = struct.unpack("<Q", space.memory.read(top + 8 * index, 8))[0]
            if entry & 0x3 == 0x3:
                space.write_physical(top + 8 * index, struct.pack("<Q", entry | _ARM64_TABLE_BITS), allow_tables=True)
    return VmmKernel(
        nt_base=nt_base,
        nt_size=nt_size,
        system_eprocess=eps[0],
        ps_active_process_head=head,
        ps_loaded_module_list=mods,
        processes=tuple(processes),
        build=build,
        stamped=tuple(stamped),
        eprocess=dict(ep),
    )
