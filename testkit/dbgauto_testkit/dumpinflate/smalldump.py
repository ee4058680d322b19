"""Read the few tables of a Windows-written 64-bit small memory dump the inflater needs, straight from the spec.

Independent of ``dbgauto.kdump`` on purpose: the inflated dumps check dbgauto's converter, so the bytes they
place must not come through dbgauto's own small-dump reader. Offsets: ``../shared/spec/triage-format.md`` §2-§4
and ``observed-triage-x64.md`` (DUMP_HEADER64, TRIAGE_DUMP64 at 0x2000, DUMP_DRIVER_ENTRY64 stride 0x90 with
DllBase +0x38, SizeOfImage +0x48, CheckSum +0x80, TimeDateStamp +0x88, DUMP_STRING pool, DUMP_UNLOADED_DRIVERS64
of 0x38 bytes after a u64 count, TRIAGE_DATA_BLOCK {u64 Address, u32 Offset, u32 Size}).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

_TRIAGE_NAMES = (
    "ServicePackBuild",
    "SizeOfDump",
    "ValidOffset",
    "ContextOffset",
    "ExceptionOffset",
    "MmOffset",
    "UnloadedDriversOffset",
    "PrcbOffset",
    "ProcessOffset",
    "ThreadOffset",
    "CallStackOffset",
    "SizeOfCallStack",
    "DriverListOffset",
    "DriverCount",
    "StringPoolOffset",
    "StringPoolSize",
    "BrokenDriverOffset",
    "TriageOptions",
)

# KDDEBUGGER_DATA64 fields the inflater uses (kd-structures.md §2), as (offset, struct code).
KDBG_FIELDS = {
    "KernBase": (0x18, "Q"),
    "PsLoadedModuleList": (0x48, "Q"),
    "KiProcessorBlock": (0x218, "Q"),
    "MmUnloadedDrivers": (0x220, "Q"),
    "MmLastUnloadedDriver": (0x228, "Q"),
    "OffsetKThreadInitialStack": (0x29E, "H"),
    "OffsetKThreadApcProcess": (0x2A0, "H"),
    "SizeEProcess": (0x2A8, "H"),
    "SizePrcb": (0x2B0, "H"),
    "OffsetPrcbCurrentThread": (0x2B4, "H"),
    "OffsetPrcbNumber": (0x2BE, "H"),
    "SizeEThread": (0x2C0, "H"),
    "OffsetPrcbContext": (0x338, "H"),
    "OffsetKThreadStackLimit": (0x340, "I"),
    "OffsetKThreadStackBase": (0x344, "I"),
}


@dataclass(frozen=True)
class Driver:
    name: str
    base: int
    size: int
    timestamp: int
    checksum: int


@dataclass(frozen=True)
class Unloaded:
    name: str
    name_length: int  # UNICODE_STRING.Length in bytes as stored
    start: int
    end: int


@dataclass
class SmallDump:
    """The parts of a real small dump, as raw bytes and plain numbers."""

    path: Path
    header: bytes  # the 0x2000-byte DUMP_HEADER64
    triage: dict[str, int]
    context: bytes  # 0x4D0 (AMD64) or 0x390 (ARM64)
    exception: bytes  # 0x98
    prcb: bytes
    process: bytes
    thread: bytes
    stack: bytes
    top_of_stack: int
    kdbg: bytes
    drivers: list[Driver] = field(default_factory=list)
    unloaded: list[Unloaded] = field(default_factory=list)
    blocks: list[tuple[int, bytes]] = field(default_factory=list)

    def h64(self, off: int) -> int:
        return int(struct.unpack_from("<Q", self.header, off)[0])

    def h32(self, off: int) -> int:
        return int(struct.unpack_from("<I", self.header, off)[0])

    @property
    def kdbg_va(self) -> int:
        return self.h64(0x80)

    @property
    def machine(self) -> int:
        return self.h32(0x30)

    @property
    def dtb(self) -> int:
        return self.h64(0x10)

    @property
    def number_processors(self) -> int:
        return self.h32(0x34)

    def kd(self, name: str) -> int:
        off, code = KDBG_FIELDS[name]
        return int(struct.unpack_from("<" + code, self.kdbg, off)[0])

    def read_captured(self, va: int, size: int) -> bytes | None:
        """Bytes the small dump captured at ``va`` (data blocks only), or None if not wholly inside one block."""
        for a, data in self.blocks:
            if a <= va and va + size <= a + len(data):
                return data[va - a : va - a + size]
        return None


def _string(buf: bytes, off: int) -> str:
    n = struct.unpack_from("<I", buf, off)[0]
    return buf[off + 4 : off + 4 + 2 * n].decode("utf-16-le")


def parse(path: str | Path) -> SmallDump:
    """Parse a 64-bit Windows small memory dump (PAGEDU64, DumpType 4)."""
    p = Path(path)
    buf = p.read_bytes()
    if buf[:8] != b"PAGEDU64" or struct.unpack_from("<I", buf, 0xF98)[0] != 4:
        raise ValueError(f"{p}: not a 64-bit small memory dump")
    t = dict(zip(_TRIAGE_NAMES, struct.unpack_from("<18I", buf, 0x2000), strict=True))
    t["TopOfStack"] = struct.unpack_from("<Q", buf, 0x2048)[0]
    names = ("DebuggerDataOffset", "DebuggerDataSize", "DataBlocksOffset", "DataBlocksCount")
    t.update(zip(names, struct.unpack_from("<4I", buf, 0x2070), strict=True))
    # MachineImageType (0x30): 0xAA64 carries the 0x390-byte ARM64 CONTEXT (kd-structures.md §6), else AMD64's
    context_size = 0x390 if struct.unpack_from("<I", buf, 0x30)[0] == 0xAA64 else 0x4D0
    kdbg_size = struct.unpack_from("<I", buf, t["DebuggerDataOffset"] + 0x14)[0]
    kdbg = buf[t["DebuggerDataOffset"] : t["DebuggerDataOffset"] + kdbg_size]

    def k16(off: int) -> int:
        return int(struct.unpack_from("<H", kdbg, off)[0])

    sd = SmallDump(
        path=p,
        header=buf[:0x2000],
        triage=t,
        context=buf[t["ContextOffset"] : t["ContextOffset"] + context_size],
        exception=buf[t["ExceptionOffset"] : t["ExceptionOffset"] + 0x98],
        prcb=buf[t["PrcbOffset"] : t["PrcbOffset"] + k16(0x2B0)],
        process=buf[t["ProcessOffset"] : t["ProcessOffset"] + k16(0x2A8)],
        thread=buf[t["ThreadOffset"] : t["ThreadOffset"] + k16(0x2C0)],
        stack=buf[t["CallStackOffset"] : t["CallStackOffset"] + t["SizeOfCallStack"]],
        top_of_stack=t["TopOfStack"],
        kdbg=kdbg,
    )
    for i in range(t["DriverCount"]):
        e = t["DriverListOffset"] + 0x90 * i
        name_off = struct.unpack_from("<I", buf, e)[0]
        base = struct.unpack_from("<Q", buf, e + 8 + 0x30)[0]
        size = struct.unpack_from("<I", buf, e + 8 + 0x40)[0]
        checksum = struct.unpack_from("<I", buf, e + 8 + 0x78)[0]
        ts = struct.unpack_from("<I", buf, e + 8 + 0x80)[0]
        sd.drivers.append(Driver(_string(buf, name_off), base, size, ts, checksum))
    u = t["UnloadedDriversOffset"]
    count = struct.unpack_from("<Q", buf, u)[0]
    for i in range(count):
        e = u + 8 + 0x38 * i
        length = struct.unpack_from("<H", buf, e)[0]
        name = buf[e + 0x10 : e + 0x10 + min(length, 24)].decode("utf-16-le")
        start, end = struct.unpack_from("<QQ", buf, e + 0x28)
        sd.unloaded.append(Unloaded(name, length, start, end))
    for i in range(t["DataBlocksCount"]):
        addr, off, size = struct.unpack_from("<QII", buf, t["DataBlocksOffset"] + 16 * i)
        sd.blocks.append((addr, buf[off : off + size]))
    return sd
