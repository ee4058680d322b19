"""A small x64 memory dump assembled byte by byte with struct.pack, straight from the spec's offsets.

Deliberately shares no code with dbgauto (neither the Layout tables nor the writer), so a test that reads it
checks the reader against an independent statement of the format (../shared/spec/triage-format.md,
observed-triage-x64.md, kd-structures.md).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

KDBG_VA = 0xFFFFF80000100B20
KI_PROCESSOR_BLOCK = 0xFFFFF80000200000
PRCB_VA = 0xFFFFF80000300000
THREAD_VA = 0xFFFFA00000001000
PROCESS_VA = 0xFFFFA00000005000
TOP_OF_STACK = 0xFFFF800000007E00
NT_BASE = 0xFFFFF80000000000
DRV_BASE = 0xFFFFF80001000000
BLOB_TAG = uuid.UUID("12345678-9abc-4def-8123-456789abcdef")


@dataclass
class Handmade:
    data: bytes
    offsets: dict[str, int]


def _fill(n: int) -> bytearray:
    return bytearray((b"PAGE" * (n // 4 + 1))[:n])


def _align8(n: int) -> int:
    return (n + 7) & ~7


def build_handmade() -> Handmade:
    hdr = _fill(0x2000)
    struct.pack_into("<8sII", hdr, 0, b"PAGEDU64", 0xF, 19041)
    struct.pack_into(
        "<QQQQII", hdr, 0x10, 0x1AD000, 0xFFFFF80000400000, 0xFFFFF80000500000, 0xFFFFF80000600000, 0x8664, 1
    )
    struct.pack_into("<I", hdr, 0x38, 0xD1)  # BugCheckCode; 0x3C keeps the filler, as in the real file
    struct.pack_into("<QQQQ", hdr, 0x40, 0x10, 2, 0, NT_BASE + 0x1234)
    struct.pack_into("<Q", hdr, 0x80, KDBG_VA)
    hdr[0x348:0xF00] = bytes(0xF00 - 0x348)
    struct.pack_into("<I", hdr, 0x348 + 0x30, 0x10001F)  # ContextFlags
    struct.pack_into("<HHHHHH", hdr, 0x348 + 0x38, 0x10, 0x2B, 0x2B, 0x53, 0x2B, 0x18)
    struct.pack_into("<Q", hdr, 0x348 + 0x98, TOP_OF_STACK + 0x40)  # Rsp
    struct.pack_into("<Q", hdr, 0x348 + 0x78, 0x1111)  # Rax
    struct.pack_into("<Q", hdr, 0x348 + 0xF8, NT_BASE + 0x1234)  # Rip
    struct.pack_into("<IIQQI", hdr, 0xF00, 0xC0000005, 0, 0, NT_BASE + 0x1234, 2)
    struct.pack_into("<QQ", hdr, 0xF20, 1, 0xDEAD0000)
    struct.pack_into("<I", hdr, 0xF98, 4)
    struct.pack_into("<QQ", hdr, 0xFA0, 0x20000, 0x01D707F23DBB3399)
    struct.pack_into("<QI", hdr, 0x1030, 10_000_000, 0xCFF)
    struct.pack_into("<III", hdr, 0x1040, 1, 0x110, 0)

    body = bytearray()
    base = 0x2080
    off: dict[str, int] = {}

    def put(name: str, data: bytes) -> int:
        start = _align8(base + len(body))
        body.extend(bytes(start - base - len(body)))
        body.extend(data)
        off[name] = start
        return start

    put("mm", struct.pack("<II", 1, 0x50) + bytes(0x48))
    name = "oldfilter_long.sys".encode("utf-16-le")
    unl = struct.pack("<Q", 1) + struct.pack("<HHIQ", 36, 36, 0, 0) + name[:24] + struct.pack("<QQ", 0x1000, 0x3000)
    put("unloaded", unl)
    prcb = bytearray(0x100)
    struct.pack_into("<Q", prcb, 0x8, THREAD_VA)  # CurrentThread (KDBG.OffsetPrcbCurrentThread = 8)
    struct.pack_into("<H", prcb, 0x24, 0)  # Number (KDBG.OffsetPrcbNumber = 0x24)
    prcb[0x80:0x90] = b"handmade-prcb!!!"
    put("prcb", bytes(prcb))
    process = bytearray(0xA40)
    struct.pack_into("<Q", process, 0x440, 8)  # UniqueProcessId (19041)
    process[0x5A8 : 0x5A8 + 15] = b"handmade.exe\0\0\0"
    put("process", bytes(process))
    thread = bytearray(0x898)
    struct.pack_into("<Q", thread, 0xB8, PROCESS_VA)  # ApcState.Process (KDBG.OffsetKThreadApcProcess)
    struct.pack_into("<QQ", thread, 0x478, 8, 0x1C)  # Cid
    put("thread", bytes(thread))
    stack = bytearray(0x200)
    struct.pack_into("<Q", stack, 0x0, NT_BASE + 0x1234)
    struct.pack_into("<Q", stack, 0x18, DRV_BASE + 0x10)
    struct.pack_into("<Q", stack, 0x20, DRV_BASE + 0x5000)  # past the driver's end: not a hit
    put("stack", bytes(stack))
    kdbg = bytearray(0x380)
    struct.pack_into("<4sI", kdbg, 0x10, b"KDBG", 0x380)
    struct.pack_into("<Q", kdbg, 0x18, NT_BASE)
    struct.pack_into("<Q", kdbg, 0x48, 0xFFFFF80000500000)
    struct.pack_into("<Q", kdbg, 0x218, KI_PROCESSOR_BLOCK)
    struct.pack_into("<H", kdbg, 0x2A0, 0xB8)  # OffsetKThreadApcProcess
    struct.pack_into("<H", kdbg, 0x2A8, 0xA40)  # SizeEProcess
    struct.pack_into("<H", kdbg, 0x2B0, 0x100)  # SizePrcb
    struct.pack_into("<H", kdbg, 0x2B4, 0x8)  # OffsetPrcbCurrentThread
    struct.pack_into("<H", kdbg, 0x2BE, 0x24)  # OffsetPrcbNumber
    struct.pack_into("<H", kdbg, 0x2C0, 0x898)  # SizeEThread
    put("kdbg", bytes(kdbg))
    drivers = [
        ("\\SystemRoot\\system32\\ntoskrnl.exe", NT_BASE, 0x100000, 0x5F5E100, 0xABC),
        ("\\x\\d.sys", DRV_BASE, 0x4000, 7, 9),
    ]
    list_off = _align8(base + len(body))
    pool_off = list_off + 0x90 * len(drivers)
    entries, pool = bytearray(), bytearray()
    for nm, b, size, stamp, csum in drivers:
        e = bytearray(0x90)
        struct.pack_into("<I", e, 0, pool_off + len(pool))
        struct.pack_into("<Q", e, 8 + 0x30, b)
        struct.pack_into("<I", e, 8 + 0x40, size)
        struct.pack_into("<I", e, 8 + 0x78, csum)
        struct.pack_into("<I", e, 8 + 0x80, stamp)
        entries += e
        s = struct.pack("<I", len(nm)) + nm.encode("utf-16-le") + b"\0\0"
        pool += s + bytes(_align8(len(s)) - len(s))
    put("drivers", bytes(entries))
    put("pool", bytes(pool))
    off["pool_size"] = len(pool)
    blocks = [
        (KI_PROCESSOR_BLOCK, struct.pack("<Q", PRCB_VA)),
        (PRCB_VA, bytes(prcb[:0x100])),
        (0xFFFFF80000700001, b"xyz"),
    ]
    table_off = _align8(base + len(body))
    payload = table_off + 16 * len(blocks)
    table = bytearray()
    cur = payload
    for va, data in blocks:
        table += struct.pack("<QII", va, cur, len(data))
        cur += len(data)
    put("blocks", bytes(table))
    for _va, data in blocks:
        body.extend(data)
    valid = _align8(base + len(body))
    body.extend(bytes(valid - base - len(body)))
    body += b"TRGD"
    off["valid"] = valid
    size_of_dump = valid + 4

    tri = struct.pack(
        "<18IQIIQQIIIIII",
        0,
        size_of_dump,
        valid,
        0x348,
        0xF00,
        off["mm"],
        off["unloaded"],
        off["prcb"],
        off["process"],
        off["thread"],
        off["stack"],
        0x200,
        off["drivers"],
        len(drivers),
        off["pool"],
        len(pool),
        0,
        0xFFFFFFFF,
        TOP_OF_STACK,
        0,
        0,
        0,
        0,
        0,
        0,
        off["kdbg"],
        0x380,
        off["blocks"],
        len(blocks),
    )
    assert len(tri) == 0x80
    blob_data = b"hello blob"
    blob = b"DumpBlob" + struct.pack("<II", 0x10, 0xF0004A61)
    blob += struct.pack("<I16sIII", 0x20, BLOB_TAG.bytes_le, len(blob_data), 0, 6) + blob_data + bytes(6)
    off["blob"] = size_of_dump
    return Handmade(bytes(hdr) + tri + bytes(body) + blob, off)
