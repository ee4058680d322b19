"""32-bit: no real 32-bit dump is reachable, so build a small x86 PAE kernel world with dumpsynth (KDBG, two
processors, current thread and process, stack, loaded-module list, unloaded drivers, MM globals) following the
32-bit layouts of the spec, write it as a Complete dump, and check the conversion finds each part."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from dbgauto.convert import convert_dump
from dbgauto.kdump.reader import KernelDump

dumpsynth = pytest.importorskip("dumpsynth")

KDBG = 0x82F6EC28
HEAD = 0x82F7E850  # PsLoadedModuleList
KPB = 0x82F80000  # KiProcessorBlock
UNLOADED_PTR, LAST_UNLOADED, SPECIAL_POOL_TAG, MAX_NPP = 0x82F80100, 0x82F80104, 0x82F80108, 0x82F8010C
PRCB = (0x82F5D120, 0x80DC0120)
CTX = (0x82F62000, 0x80DC4000)  # what KPRCB.Context points to
THREAD = (0x8A5F2030, 0x80DC3800)
PROCESS = 0x8A4C6020
STACK = ((0x9A3FC000, 0x9A3FF000), (0x80DD0000, 0x80DD3000))  # (StackLimit, StackBase)
HEADER_ESP, SAVED_ESP = 0x9A3FEC00, 0x9A3FEA00
POOL = 0x8B000000
NT, HAL, DRV = (0x82E00000, 0x410000), (0x82DC0000, 0x37000), (0x8FC30000, 0x12000)
SIZE_PRCB, SIZE_ETHREAD, SIZE_EPROCESS = 0x3628, 0x2B8, 0x2C0
OFF_CUR, OFF_APC, OFF_CTX, OFF_NUM, OFF_SLIMIT, OFF_SBASE = 0x4, 0x50, 0x3300, 0x3CC, 0x2C, 0x190


def _sx(v: int) -> int:
    return v | 0xFFFFFFFF00000000 if v & 0x80000000 else v


def _kdbg() -> bytes:
    k = bytearray(0x360)
    struct.pack_into("<4sI", k, 0x10, b"KDBG", len(k))
    q = {0x18: NT[0], 0x48: HEAD, 0x218: KPB, 0x220: UNLOADED_PTR, 0x228: LAST_UNLOADED, 0x238: SPECIAL_POOL_TAG}
    q[0x100] = MAX_NPP
    for off, v in q.items():
        struct.pack_into("<Q", k, off, _sx(v))
    h = {0x2A0: OFF_APC, 0x2A8: SIZE_EPROCESS, 0x2B0: SIZE_PRCB, 0x2B4: OFF_CUR, 0x2BE: OFF_NUM, 0x2C0: SIZE_ETHREAD}
    h[0x338] = OFF_CTX
    for off, v in h.items():
        struct.pack_into("<H", k, off, v)
    struct.pack_into("<II", k, 0x340, OFF_SLIMIT, OFF_SBASE)
    return bytes(k)


def _ustr(space: Any, text: str, at: int) -> bytes:
    raw = text.encode("utf-16-le")
    space.map(at, raw + b"\0\0")
    return struct.pack("<HHI", len(raw), len(raw) + 2, at)


def _pe(ts: int, size: int, checksum: int) -> bytes:
    page = bytearray(0x400)
    page[:2] = b"MZ"
    struct.pack_into("<I", page, 0x3C, 0xF0)
    page[0xF0:0xF4] = b"PE\0\0"
    struct.pack_into("<I", page, 0xF0 + 8, ts)
    struct.pack_into("<I", page, 0xF0 + 0x18 + 0x38, size)
    struct.pack_into("<I", page, 0xF0 + 0x18 + 0x40, checksum)
    return bytes(page)


def _x86_context(eip: int, esp: int, ebp: int) -> bytes:
    return dumpsynth.x86_context({"eip": eip, "esp": esp, "ebp": ebp, "eax": POOL + 0x40, "cs": 8, "ss": 0x10})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    space = dumpsynth.AddressSpace("x86pae", ram_bytes=64 << 20, placement="scattered", seed=5)
    space.map(KDBG, _kdbg())
    space.map(KPB, struct.pack("<II", *PRCB))
    prcbs, threads = [], []
    for cpu in range(2):
        prcb = bytearray(SIZE_PRCB)
        struct.pack_into("<I", prcb, OFF_CUR, THREAD[cpu])
        struct.pack_into("<I", prcb, OFF_CTX, CTX[cpu])
        struct.pack_into("<H", prcb, OFF_NUM, cpu)
        space.map(PRCB[cpu], bytes(prcb))
        prcbs.append(bytes(prcb))
        thread = bytearray(SIZE_ETHREAD)
        struct.pack_into("<I", thread, OFF_APC, PROCESS)
        struct.pack_into("<I", thread, OFF_SLIMIT, STACK[cpu][0])
        struct.pack_into("<I", thread, OFF_SBASE, STACK[cpu][1])
        space.map(THREAD[cpu], bytes(thread))
        threads.append(bytes(thread))
        esp = SAVED_ESP if cpu == 0 else STACK[1][1] - 0x400
        space.map(CTX[cpu], _x86_context(0x82E91234, esp, esp + 0x40))
    process = bytes(range(256)) * (SIZE_EPROCESS // 256) + bytes(SIZE_EPROCESS % 256)
    space.map(PROCESS, process)
    stack = bytearray(STACK[0][1] - SAVED_ESP)
    struct.pack_into("<IIII", stack, 0x10, POOL + 0x100, 0x1234, POOL + 0x2000, NT[0] + 0x91234)
    space.map(SAVED_ESP, bytes(stack))
    space.map(STACK[1][1] - 0x400, bytes(0x400))
    space.map(POOL, bytes(range(256)) * 48)  # window targets
    # loaded modules: debugger-side 32-bit KLDR layout (DllBase 0x18, SizeOfImage 0x20, FullDllName 0x24,
    # BaseDllName 0x2C, CheckSum 0x40, TimeDateStamp 0x44)
    mods = [
        ("\\SystemRoot\\system32\\ntoskrnl.exe", *NT, 0x4A5BC000, 0x3C0FFE),
        ("\\SystemRoot\\system32\\hal.dll", *HAL, 0x4A5BBF00, 0x3E1AA),
    ]
    mods.append(("\\SystemRoot\\System32\\drivers\\crashy.sys", *DRV, 0x5F00AA01, 0x1A2B3))
    entries = [POOL + 0x4000 + 0x100 * i for i in range(len(mods))]
    for i, (name, base, size, ts, checksum) in enumerate(mods):
        e = bytearray(0x48)
        struct.pack_into("<II", e, 0, entries[i + 1] if i + 1 < len(mods) else HEAD, entries[i - 1] if i else HEAD)
        struct.pack_into("<III", e, 0x18, base, 0, size)
        e[0x24:0x2C] = _ustr(space, name, POOL + 0x5000 + 0x100 * i)
        e[0x2C:0x34] = _ustr(space, name.rsplit("\\", 1)[1], POOL + 0x5800 + 0x40 * i)
        struct.pack_into("<II", e, 0x40, checksum, ts)
        space.map(entries[i], bytes(e))
    space.map(HEAD, struct.pack("<II", entries[0], entries[-1]))
    space.map(DRV[0], b"\xcc" * 0x1000)  # the faulting driver's first page (the PC is in it)
    space.map(NT[0], _pe(0x4A5BC111, NT[1], 0x3C0FFE))  # the PE header wins over the entry's 0x4A5BC000
    # unloaded drivers: 50 x UNLOADED_DRIVERS32 (UNICODE_STRING32, Start, End, LARGE_INTEGER time)
    arr = bytearray(50 * 0x18)
    for i, (name, start) in enumerate((("old.sys", 0x8F000000), ("newer_driver_x.sys", 0x8F100000))):
        arr[i * 0x18 : i * 0x18 + 8] = _ustr(space, name, POOL + 0x6000 + 0x80 * i)
        struct.pack_into("<IIQ", arr, i * 0x18 + 8, start, start + 0x8000, 0x01D7000000000000 + i)
    space.map(POOL + 0x7000, bytes(arr))
    space.map(UNLOADED_PTR, struct.pack("<IIII", POOL + 0x7000, 2, 0x6C6F6F50, 0x1000000))
    fields = dumpsynth.HeaderFields(
        number_processors=2,
        kd_debugger_data_block=KDBG,
        ps_loaded_module_list=HEAD,
        bugcheck_code=0x7E,
        bugcheck_parameters=(0xC0000005, DRV[0] + 0x11A, 0x9A3FEF00, 0x9A3FEB00),
        context=_x86_context(DRV[0] + 0x11A, HEADER_ESP, HEADER_ESP + 0x30),
    )
    path = tmp_path_factory.mktemp("x86") / "x86pae.dmp"
    dumpsynth.write_full_dump(path, space, fields=fields)
    res = convert_dump(path, path.with_suffix(".mini.dmp"))
    return {"res": res, "prcbs": prcbs, "threads": threads, "process": process, "stack": bytes(stack)}


def test_x86_conversion_finds_every_part(world: dict[str, Any]) -> None:
    res = world["res"]
    assert [w for w in res.warnings if not w.startswith("data blocks: skipped memory not in the dump")] == []
    with KernelDump.open(res.output) as out:
        assert not out.is_64bit
        assert out.header.pae_enabled is True
        tri = out.triage
        assert tri.prcb == world["prcbs"][0]
        assert tri.thread == world["threads"][0]
        assert tri.process == world["process"]
        assert tri.header.top_of_stack == SAVED_ESP
        assert tri.stack == world["stack"]
        assert tri.kdbg is not None
        assert tri.kdbg.raw == _kdbg()
        assert tri.context is not None
        assert tri.context.sp == HEADER_ESP
        drivers = [(d.name, d.base, d.size, d.timestamp, d.checksum) for d in tri.drivers]
        assert drivers == [
            ("\\SystemRoot\\system32\\ntoskrnl.exe", *NT, 0x4A5BC111, 0x3C0FFE),
            ("\\SystemRoot\\system32\\hal.dll", *HAL, 0x4A5BBF00, 0x3E1AA),
            ("\\SystemRoot\\System32\\drivers\\crashy.sys", *DRV, 0x5F00AA01, 0x1A2B3),
        ]
        unloaded = [(u.name, u.start, u.end) for u in tri.unloaded_drivers]
        assert unloaded == [("newer_driver", 0x8F100000, 0x8F108000), ("old.sys", 0x8F000000, 0x8F008000)]
        assert tri.mm is not None
        assert tri.mm.raw[8:12] == struct.pack("<I", 0x6C6F6F50)  # MmSpecialPoolTag
        blocks = {b.address: b.size for b in tri.data_blocks}
        assert blocks[KPB] == 8  # KiProcessorBlock: 2 x 4-byte pointers
        assert blocks[PRCB[0]] == SIZE_PRCB
        assert blocks[PRCB[1]] == SIZE_PRCB
        assert blocks[CTX[0]] == 0x2CC
        assert (DRV[0] + 0x11A) & ~0xFFF in blocks  # the faulting PC's page
        assert blocks[POOL + 0x40] == 0x100  # the window at EAX
        assert blocks[POOL + 0x140] == 0xC0  # the stack pointer POOL+0x100's window, clipped by EAX's
        assert tri.memory.read(POOL + 0x2000, 0x100) == bytes(range(256))
