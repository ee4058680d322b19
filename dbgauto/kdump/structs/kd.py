"""Kernel-debugger structures: KDDEBUGGER_DATA64, KLDR_DATA_TABLE_ENTRY, UNICODE_STRING, unloaded drivers.

Offsets: ``../shared/spec/kd-structures.md`` (§1 DBGKD_DEBUG_DATA_HEADER64, §2 KDDEBUGGER_DATA64 from the SDK
``wdbgexts.h`` cross-checked with rekall's vtypes, §4 KLDR entries from rizin's ``dmp_specs.h`` and public Windows
10/11 headers, §5 ntiodump.h UNLOADED_DRIVERS). Field names are Microsoft's so they match the debugger's output.

Two KLDR layouts exist: the *debugger-side* 64-bit copy Windows embeds in small dumps (TimeDateStamp at 0x80) and
the *live* Windows 10/11 x64 kernel entry on ``PsLoadedModuleList`` (TimeDateStamp at 0x9C). A converter reads the
latter and writes the former.
"""

from __future__ import annotations

from typing import Any, Final

from dbgauto.util.layout import Buffer, Layout

# --- UNICODE_STRING ----------------------------------------------------------------------------------------------

UNICODE_STRING64: Final = Layout(
    "UNICODE_STRING64",
    [("Length", 0x0, "H"), ("MaximumLength", 0x2, "H"), ("Buffer", 0x8, "Q")],  # Length in bytes, no NUL
    size=0x10,
)
UNICODE_STRING32: Final = Layout(
    "UNICODE_STRING32",
    [("Length", 0x0, "H"), ("MaximumLength", 0x2, "H"), ("Buffer", 0x4, "I")],
    size=0x8,
)

# --- KDDEBUGGER_DATA64 -------------------------------------------------------------------------------------------

KDBG_OWNER_TAG_VALUE: Final = 0x4742444B  # 'KDBG' read as a little-endian u32 (bytes "KDBG" on disk)
KDBG_HEADER_SIZE: Final = 0x18

DBGKD_DEBUG_DATA_HEADER64: Final = Layout(
    "DBGKD_DEBUG_DATA_HEADER64",
    [("ListFlink", 0x00, "Q"), ("ListBlink", 0x08, "Q"), ("OwnerTag", 0x10, "I"), ("Size", 0x14, "I")],
    size=KDBG_HEADER_SIZE,
)

KDDEBUGGER_DATA64: Final = Layout(
    "KDDEBUGGER_DATA64",
    [
        ("ListFlink", 0x000, "Q"),
        ("ListBlink", 0x008, "Q"),
        ("OwnerTag", 0x010, "I"),
        ("Size", 0x014, "I"),
        ("KernBase", 0x018, "Q"),
        ("BreakpointWithStatus", 0x020, "Q"),
        ("SavedContext", 0x028, "Q"),
        ("ThCallbackStack", 0x030, "H"),
        ("NextCallback", 0x032, "H"),
        ("FramePointer", 0x034, "H"),
        ("PagingBits", 0x036, "H"),
        ("KiCallUserMode", 0x038, "Q"),
        ("KeUserCallbackDispatcher", 0x040, "Q"),
        ("PsLoadedModuleList", 0x048, "Q"),
        ("PsActiveProcessHead", 0x050, "Q"),
        ("PspCidTable", 0x058, "Q"),
        ("ExpSystemResourcesList", 0x060, "Q"),
        ("ExpPagedPoolDescriptor", 0x068, "Q"),
        ("ExpNumberOfPagedPools", 0x070, "Q"),
        ("KeTimeIncrement", 0x078, "Q"),
        ("KeBugCheckCallbackListHead", 0x080, "Q"),
        ("KiBugcheckData", 0x088, "Q"),
        ("IopErrorLogListHead", 0x090, "Q"),
        ("ObpRootDirectoryObject", 0x098, "Q"),
        ("ObpTypeObjectType", 0x0A0, "Q"),
        ("MmSystemCacheStart", 0x0A8, "Q"),
        ("MmSystemCacheEnd", 0x0B0, "Q"),
        ("MmSystemCacheWs", 0x0B8, "Q"),
        ("MmPfnDatabase", 0x0C0, "Q"),
        ("MmSystemPtesStart", 0x0C8, "Q"),
        ("MmSystemPtesEnd", 0x0D0, "Q"),
        ("MmSubsectionBase", 0x0D8, "Q"),
        ("MmNumberOfPagingFiles", 0x0E0, "Q"),
        ("MmLowestPhysicalPage", 0x0E8, "Q"),
        ("MmHighestPhysicalPage", 0x0F0, "Q"),
        ("MmNumberOfPhysicalPages", 0x0F8, "Q"),
        ("MmMaximumNonPagedPoolInBytes", 0x100, "Q"),
        ("MmNonPagedSystemStart", 0x108, "Q"),
        ("MmNonPagedPoolStart", 0x110, "Q"),
        ("MmNonPagedPoolEnd", 0x118, "Q"),
        ("MmPagedPoolStart", 0x120, "Q"),
        ("MmPagedPoolEnd", 0x128, "Q"),
        ("MmPagedPoolInformation", 0x130, "Q"),
        ("MmPageSize", 0x138, "Q"),
        ("MmSizeOfPagedPoolInBytes", 0x140, "Q"),
        ("MmTotalCommitLimit", 0x148, "Q"),
        ("MmTotalCommittedPages", 0x150, "Q"),
        ("MmSharedCommit", 0x158, "Q"),
        ("MmDriverCommit", 0x160, "Q"),
        ("MmProcessCommit", 0x168, "Q"),
        ("MmPagedPoolCommit", 0x170, "Q"),
        ("MmExtendedCommit", 0x178, "Q"),
        ("MmZeroedPageListHead", 0x180, "Q"),
        ("MmFreePageListHead", 0x188, "Q"),
        ("MmStandbyPageListHead", 0x190, "Q"),
        ("MmModifiedPageListHead", 0x198, "Q"),
        ("MmModifiedNoWritePageListHead", 0x1A0, "Q"),
        ("MmAvailablePages", 0x1A8, "Q"),
        ("MmResidentAvailablePages", 0x1B0, "Q"),
        ("PoolTrackTable", 0x1B8, "Q"),
        ("NonPagedPoolDescriptor", 0x1C0, "Q"),
        ("MmHighestUserAddress", 0x1C8, "Q"),
        ("MmSystemRangeStart", 0x1D0, "Q"),
        ("MmUserProbeAddress", 0x1D8, "Q"),
        ("KdPrintCircularBuffer", 0x1E0, "Q"),
        ("KdPrintCircularBufferEnd", 0x1E8, "Q"),
        ("KdPrintWritePointer", 0x1F0, "Q"),
        ("KdPrintRolloverCount", 0x1F8, "Q"),
        ("MmLoadedUserImageList", 0x200, "Q"),
        ("NtBuildLab", 0x208, "Q"),
        ("KiNormalSystemCall", 0x210, "Q"),
        ("KiProcessorBlock", 0x218, "Q"),
        ("MmUnloadedDrivers", 0x220, "Q"),
        ("MmLastUnloadedDriver", 0x228, "Q"),
        ("MmTriageActionTaken", 0x230, "Q"),
        ("MmSpecialPoolTag", 0x238, "Q"),
        ("KernelVerifier", 0x240, "Q"),
        ("MmVerifierData", 0x248, "Q"),
        ("MmAllocatedNonPagedPool", 0x250, "Q"),
        ("MmPeakCommitment", 0x258, "Q"),
        ("MmTotalCommitLimitMaximum", 0x260, "Q"),
        ("CmNtCSDVersion", 0x268, "Q"),
        ("MmPhysicalMemoryBlock", 0x270, "Q"),
        ("MmSessionBase", 0x278, "Q"),
        ("MmSessionSize", 0x280, "Q"),
        ("MmSystemParentTablePage", 0x288, "Q"),
        ("MmVirtualTranslationBase", 0x290, "Q"),
        ("OffsetKThreadNextProcessor", 0x298, "H"),
        ("OffsetKThreadTeb", 0x29A, "H"),
        ("OffsetKThreadKernelStack", 0x29C, "H"),
        ("OffsetKThreadInitialStack", 0x29E, "H"),
        ("OffsetKThreadApcProcess", 0x2A0, "H"),
        ("OffsetKThreadState", 0x2A2, "H"),
        ("OffsetKThreadBStore", 0x2A4, "H"),
        ("OffsetKThreadBStoreLimit", 0x2A6, "H"),
        ("SizeEProcess", 0x2A8, "H"),
        ("OffsetEprocessPeb", 0x2AA, "H"),
        ("OffsetEprocessParentCID", 0x2AC, "H"),
        ("OffsetEprocessDirectoryTableBase", 0x2AE, "H"),
        ("SizePrcb", 0x2B0, "H"),
        ("OffsetPrcbDpcRoutine", 0x2B2, "H"),
        ("OffsetPrcbCurrentThread", 0x2B4, "H"),
        ("OffsetPrcbMhz", 0x2B6, "H"),
        ("OffsetPrcbCpuType", 0x2B8, "H"),
        ("OffsetPrcbVendorString", 0x2BA, "H"),
        ("OffsetPrcbProcStateContext", 0x2BC, "H"),
        ("OffsetPrcbNumber", 0x2BE, "H"),
        ("SizeEThread", 0x2C0, "H"),
        ("L1tfHighPhysicalBitIndex", 0x2C2, "B"),
        ("L1tfSwizzleBitIndex", 0x2C3, "B"),
        ("Padding0", 0x2C4, "I"),
        ("KdPrintCircularBufferPtr", 0x2C8, "Q"),
        ("KdPrintBufferSize", 0x2D0, "Q"),
        ("KeLoaderBlock", 0x2D8, "Q"),
        ("SizePcr", 0x2E0, "H"),
        ("OffsetPcrSelfPcr", 0x2E2, "H"),
        ("OffsetPcrCurrentPrcb", 0x2E4, "H"),
        ("OffsetPcrContainedPrcb", 0x2E6, "H"),
        ("OffsetPcrInitialBStore", 0x2E8, "H"),
        ("OffsetPcrBStoreLimit", 0x2EA, "H"),
        ("OffsetPcrInitialStack", 0x2EC, "H"),
        ("OffsetPcrStackLimit", 0x2EE, "H"),
        ("OffsetPrcbPcrPage", 0x2F0, "H"),
        ("OffsetPrcbProcStateSpecialReg", 0x2F2, "H"),
        ("GdtR0Code", 0x2F4, "H"),
        ("GdtR0Data", 0x2F6, "H"),
        ("GdtR0Pcr", 0x2F8, "H"),
        ("GdtR3Code", 0x2FA, "H"),
        ("GdtR3Data", 0x2FC, "H"),
        ("GdtR3Teb", 0x2FE, "H"),
        ("GdtLdt", 0x300, "H"),
        ("GdtTss", 0x302, "H"),
        ("Gdt64R3CmCode", 0x304, "H"),
        ("Gdt64R3CmTeb", 0x306, "H"),
        ("IopNumTriageDumpDataBlocks", 0x308, "Q"),
        ("IopTriageDumpDataBlocks", 0x310, "Q"),
        ("VfCrashDataBlock", 0x318, "Q"),
        ("MmBadPagesDetected", 0x320, "Q"),
        ("MmZeroedPageSingleBitErrorsDetected", 0x328, "Q"),
        ("EtwpDebuggerData", 0x330, "Q"),
        ("OffsetPrcbContext", 0x338, "H"),
        ("OffsetPrcbMaxBreakpoints", 0x33A, "H"),
        ("OffsetPrcbMaxWatchpoints", 0x33C, "H"),
        ("OffsetKThreadStackLimit", 0x340, "I"),
        ("OffsetKThreadStackBase", 0x344, "I"),
        ("OffsetKThreadQueueListEntry", 0x348, "I"),
        ("OffsetEThreadIrpList", 0x34C, "I"),
        ("OffsetPrcbIdleThread", 0x350, "H"),
        ("OffsetPrcbNormalDpcState", 0x352, "H"),
        ("OffsetPrcbDpcStack", 0x354, "H"),
        ("OffsetPrcbIsrStack", 0x356, "H"),
        ("SizeKDPC_STACK_FRAME", 0x358, "H"),
        ("OffsetKPriQueueThreadListHead", 0x35A, "H"),
        ("OffsetKThreadWaitReason", 0x35C, "H"),
        ("Padding1", 0x35E, "H"),
        ("PteBase", 0x360, "Q"),
        ("RetpolineStubFunctionTable", 0x368, "Q"),
        ("RetpolineStubFunctionTableSize", 0x370, "I"),
        ("RetpolineStubOffset", 0x374, "I"),
        ("RetpolineStubSize", 0x378, "I"),
        ("OffsetEProcessMmHotPatchContext", 0x37C, "H"),
        ("OffsetKThreadShadowStackLimit", 0x380, "I"),
        ("OffsetKThreadShadowStackBase", 0x384, "I"),
        ("ShadowStackEnabled", 0x388, "Q"),
        ("PointerAuthMask", 0x390, "Q"),
        ("OffsetPrcbExceptionStack", 0x398, "H"),
    ],
    size=0x3A0,  # newest known revision (Windows 11 "Nickel"); older builds stop earlier (Header.Size)
)
"""Every field with its offset. 0x036 ``PagingBits``: PaeEnabled bit0, KiBugCheckRecoveryActive bit1,
PagingLevels bits 2-5 (newer SDKs; padding before). All pointers are u64, sign-extended on 32-bit kernels."""

_KDBG_FIELD_ENDS: Final = tuple((f.name, f.offset + f.size) for f in KDDEBUGGER_DATA64.fields)


def kdbg_header(buf: Buffer, offset: int = 0) -> tuple[int, int] | None:
    """(OwnerTag, Size) of a debugger data block, or None when fewer than 0x18 bytes are there."""
    if offset < 0 or len(buf) - offset < KDBG_HEADER_SIZE:
        return None
    h = DBGKD_DEBUG_DATA_HEADER64.unpack(buf, offset)
    return h["OwnerTag"], h["Size"]


def decode_kdbg_fields(buf: Buffer, offset: int = 0, *, size: int | None = None) -> dict[str, int]:
    """Every KDDEBUGGER_DATA64 field that lies wholly inside the block, by name.

    The block's extent is ``min(Header.Size, size, bytes available)``: fields past ``Header.Size`` do not exist
    on that OS build and are absent from the result (not zero). ``size`` bounds it further (e.g. the triage
    DebuggerDataSize). Returns {} when even the header is missing. The OwnerTag is not checked here.
    """
    avail = len(buf) - offset
    if offset < 0 or avail < KDBG_HEADER_SIZE:
        return {}
    hdr = DBGKD_DEBUG_DATA_HEADER64.unpack(buf, offset)
    extent = min(hdr["Size"], avail, KDDEBUGGER_DATA64.size)
    if size is not None:
        extent = min(extent, size)
    if extent >= KDDEBUGGER_DATA64.size:
        return dict(KDDEBUGGER_DATA64.unpack(buf, offset))
    # One unpack over a zero-padded copy, then keep only the fields that end within the block.
    padded = bytes(memoryview(buf)[offset : offset + extent]).ljust(KDDEBUGGER_DATA64.size, b"\0")
    values = KDDEBUGGER_DATA64.unpack(padded)
    return {name: values[name] for name, end in _KDBG_FIELD_ENDS if end <= extent}


def paging_bits(fields: dict[str, Any]) -> dict[str, int] | None:
    """Split the 0x036 bitfield (PaeEnabled, KiBugCheckRecoveryActive, PagingLevels); None when absent."""
    v = fields.get("PagingBits")
    if v is None:
        return None
    return {"PaeEnabled": v & 1, "KiBugCheckRecoveryActive": (v >> 1) & 1, "PagingLevels": (v >> 2) & 0xF}


def sign_extend32(value: int) -> int:
    """A 32-bit kernel VA widened the way KDDEBUGGER_DATA64 stores it (sign-extended to 64 bits)."""
    value &= 0xFFFFFFFF
    return value | 0xFFFFFFFF00000000 if value & 0x80000000 else value


# --- KLDR_DATA_TABLE_ENTRY ---------------------------------------------------------------------------------------

KLDR_DATA_TABLE_ENTRY64: Final = Layout(
    "KLDR_DATA_TABLE_ENTRY64",  # debugger-side ("ntiodump") copy, as embedded in DUMP_DRIVER_ENTRY64
    [
        ("InLoadOrderLinks", 0x00, "2Q"),
        ("ExceptionTable", 0x10, "Q"),
        ("ExceptionTableSize", 0x18, "I"),
        ("GpValue", 0x20, "Q"),
        ("NonPagedDebugInfo", 0x28, "Q"),
        ("DllBase", 0x30, "Q"),
        ("EntryPoint", 0x38, "Q"),
        ("SizeOfImage", 0x40, "I"),
        ("FullDllName", 0x48, "16s"),  # UNICODE_STRING64
        ("BaseDllName", 0x58, "16s"),  # UNICODE_STRING64
        ("Flags", 0x68, "I"),
        ("LoadCount", 0x6C, "H"),
        ("Reserved6E", 0x6E, "H"),
        ("SectionPointer", 0x70, "Q"),
        ("CheckSum", 0x78, "I"),
        ("TimeDateStamp", 0x80, "I"),
    ],
    size=0x88,
)

KLDR_DATA_TABLE_ENTRY32: Final = Layout(
    "KLDR_DATA_TABLE_ENTRY32",  # debugger-side 32-bit copy, as embedded in DUMP_DRIVER_ENTRY32 (rizin dmp_specs.h)
    [
        ("InLoadOrderLinks", 0x00, "2I"),
        ("ExceptionTable", 0x08, "I"),
        ("ExceptionTableSize", 0x0C, "I"),
        ("GpValue", 0x10, "I"),
        ("NonPagedDebugInfo", 0x14, "I"),
        ("DllBase", 0x18, "I"),
        ("EntryPoint", 0x1C, "I"),
        ("SizeOfImage", 0x20, "I"),
        ("FullDllName", 0x24, "8s"),  # UNICODE_STRING32
        ("BaseDllName", 0x2C, "8s"),  # UNICODE_STRING32
        ("Flags", 0x34, "I"),
        ("LoadCount", 0x38, "H"),
        ("Reserved3A", 0x3A, "H"),
        ("SectionPointer", 0x3C, "I"),
        ("CheckSum", 0x40, "I"),
        ("TimeDateStamp", 0x44, "I"),
    ],
    size=0x48,
)

KLDR_DATA_TABLE_ENTRY_LIVE_WIN10_X64: Final = Layout(
    "_KLDR_DATA_TABLE_ENTRY (Windows 10/11 x64 kernel)",  # what PsLoadedModuleList links in memory (spec §4)
    [
        ("InLoadOrderLinks", 0x00, "2Q"),
        ("ExceptionTable", 0x10, "Q"),
        ("ExceptionTableSize", 0x18, "I"),
        ("GpValue", 0x20, "Q"),
        ("NonPagedDebugInfo", 0x28, "Q"),
        ("DllBase", 0x30, "Q"),
        ("EntryPoint", 0x38, "Q"),
        ("SizeOfImage", 0x40, "I"),
        ("FullDllName", 0x48, "16s"),
        ("BaseDllName", 0x58, "16s"),
        ("Flags", 0x68, "I"),
        ("LoadCount", 0x6C, "H"),
        ("SignatureLevelAndType", 0x6E, "H"),
        ("SectionPointer", 0x70, "Q"),
        ("CheckSum", 0x78, "I"),
        ("CoverageSectionSize", 0x7C, "I"),
        ("CoverageSection", 0x80, "Q"),
        ("LoadedImports", 0x88, "Q"),
        ("NtDataTableEntry", 0x90, "Q"),
        ("SizeOfImageNotRounded", 0x98, "I"),
        ("TimeDateStamp", 0x9C, "I"),
    ],
    size=0xA0,  # bytes we read; the real structure is this long at least
)


def split_unicode_string(raw: bytes, *, is_64bit: bool) -> tuple[int, int, int]:
    """(Length in bytes, MaximumLength, Buffer VA) of an embedded UNICODE_STRING32/64."""
    lay = UNICODE_STRING64 if is_64bit else UNICODE_STRING32
    v = lay.unpack(raw)
    return v["Length"], v["MaximumLength"], v["Buffer"]


def live_kldr_to_debugger_entry(live: dict[str, Any]) -> dict[str, Any]:
    """Map a live Win10/11 x64 kernel entry's fields to the debugger-side KLDR_DATA_TABLE_ENTRY64 fields."""
    return {name: live[name] for name in KLDR_DATA_TABLE_ENTRY64.by_name if name in live and name != "Reserved6E"}


# --- MmUnloadedDrivers (kernel array entries) --------------------------------------------------------------------

UNLOADED_DRIVERS64: Final = Layout(
    "UNLOADED_DRIVERS64",
    [("Name", 0x00, "16s"), ("StartAddress", 0x10, "Q"), ("EndAddress", 0x18, "Q"), ("CurrentTime", 0x20, "Q")],
    size=0x28,
)
UNLOADED_DRIVERS32: Final = Layout(
    "UNLOADED_DRIVERS32",
    [("Name", 0x00, "8s"), ("StartAddress", 0x08, "I"), ("EndAddress", 0x0C, "I"), ("CurrentTime", 0x10, "Q")],
    size=0x18,
)
MI_UNLOADED_DRIVERS: Final = 50  # entries in the kernel's circular array (common knowledge, unverified; spec §5)
