"""ARM64 and x86 small dumps: written with the writer from plausible parts, read back; nothing assumes x64."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path
from typing import Any

import pytest

from dbgauto.kdump.constants import Machine
from dbgauto.kdump.records import LoadedDriver, UnloadedDriver
from dbgauto.kdump.structs.context import ExceptionRecord
from dbgauto.kdump.triage import TriageDump
from dbgauto.kdump.triage_writer import BlobSpec, TriageDumpBuilder
from dbgauto.kernel.smalldump import kernel_view, parts_from_triage


def _kv(tri: Any) -> dict[str, Any]:
    """What the kernel layer establishes from the small dump's copies (addresses, identity, stack scan)."""
    return kernel_view(parts_from_triage(tri))


def _kdbg(ptr_fmt: str, *, ki_processor_block: int, kern_base: int) -> bytes:
    """A 0x340-byte (Windows 7-sized) KDDEBUGGER_DATA64: pointers are u64 even on 32-bit kernels."""
    k = bytearray(0x340)
    struct.pack_into("<4sI", k, 0x10, b"KDBG", 0x340)
    struct.pack_into("<Q", k, 0x18, kern_base)
    struct.pack_into("<Q", k, 0x218, ki_processor_block)
    ps = struct.calcsize(ptr_fmt)
    struct.pack_into("<H", k, 0x2A0, 0x8 * ps)  # OffsetKThreadApcProcess
    struct.pack_into("<H", k, 0x2A8, 0x80)  # SizeEProcess
    struct.pack_into("<H", k, 0x2B0, 0x100)  # SizePrcb
    struct.pack_into("<H", k, 0x2B4, ps)  # OffsetPrcbCurrentThread
    struct.pack_into("<H", k, 0x2BE, 0x20)  # OffsetPrcbNumber
    struct.pack_into("<H", k, 0x2C0, 0x60)  # SizeEThread
    return bytes(k)


ARCHES = {
    "arm64": dict(
        machine=Machine.ARM64,
        is_64bit=True,
        ptr="<Q",
        kern=0xFFFFF80123400000,
        prcb_va=0xFFFFF80120000000,
        thread_va=0xFFFFB00000010000,
        process_va=0xFFFFB00000020000,
        kiblock=0xFFFFF80123500000,
        top=0xFFFF810000003F00,
        context={"pc": 0xFFFFF80123401000, "sp": 0xFFFF810000003F80, "fp": 0xFFFF810000003FA0, "x0": 7, "lr": 5},
        pc_name="pc",
    ),
    "x86": dict(
        machine=Machine.I386,
        is_64bit=False,
        ptr="<I",
        kern=0x82000000,
        prcb_va=0x80500000,
        thread_va=0x86000000,
        process_va=0x86100000,
        kiblock=0x82500000,
        top=0x8A000F00,
        context={"eip": 0x82001000, "esp": 0x8A000F40, "ebp": 0x8A000F80, "eax": 3, "cs": 8, "ss": 0x10},
        pc_name="eip",
    ),
}


def build_for(arch: str) -> tuple[TriageDumpBuilder, dict[str, object]]:
    a = ARCHES[arch]
    ptr = str(a["ptr"])
    ps = struct.calcsize(ptr)
    prcb = bytearray(0x100)
    struct.pack_into(ptr, prcb, ps, a["thread_va"])
    prcb[0x20] = 1  # processor number 1
    thread = bytearray(0x60)
    struct.pack_into(ptr, thread, 0x8 * ps, a["process_va"])
    stack = bytearray(0x100)
    struct.pack_into(ptr, stack, 0, a["kern"] + 0x1000)
    struct.pack_into(ptr, stack, 3 * ps, 0x12345)
    kiblock = struct.pack("<2" + ptr[1], 0x1111000, a["prcb_va"])
    b = TriageDumpBuilder(
        machine=int(a["machine"]),  # type: ignore[call-overload]
        header_fields={
            "major_version": 0xF,
            "minor_version": 22000 if arch == "arm64" else 7601,
            "number_processors": 2,
            "bugcheck_code": 0x3B,
            "bugcheck_parameters": (0xC0000005, a["kern"] + 0x1000, 0, 0),
            "kd_debugger_data_block": a["kern"] + 0x300000,
        },
        context=a["context"],  # type: ignore[arg-type]
        exception=ExceptionRecord(0xC0000005, 0, 0, int(a["kern"]) + 0x1000, 1, (0xAA,)),  # type: ignore[call-overload]
        unloaded_drivers=[UnloadedDriver("gone.sys", a["kern"] - 0x10000, a["kern"] - 0x8000)],  # type: ignore[operator]
        prcb=bytes(prcb),
        process=bytes(0x80),
        thread=bytes(thread),
        stack=bytes(stack),
        top_of_stack=int(a["top"]),  # type: ignore[call-overload]
        drivers=[LoadedDriver("\\SystemRoot\\system32\\ntoskrnl.exe", int(a["kern"]), 0x800000, 0x1234, 0x99)],  # type: ignore[call-overload]
        broken_driver_index=0,
        kdbg=_kdbg(ptr, ki_processor_block=int(a["kiblock"]), kern_base=int(a["kern"])),  # type: ignore[call-overload]
        data_blocks=[(int(a["kiblock"]), kiblock), (int(a["prcb_va"]), bytes(prcb))],  # type: ignore[call-overload]
        blobs=[BlobSpec(uuid.UUID(int=5), b"abc")],
    )
    return b, a


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_write_and_read_back(arch: str, tmp_path: Path) -> None:
    b, a = build_for(arch)
    path = b.write(tmp_path / f"{arch}.dmp")
    data = path.read_bytes()
    is64 = bool(a["is_64bit"])
    assert data[:8] == (b"PAGEDU64" if is64 else b"PAGEDUMP")
    tri = TriageDump.parse_buffer(data, path=path, is_64bit=is64)
    assert tri.warnings == []
    assert tri.machine == a["machine"]
    assert tri.header.context_offset == (0x348 if is64 else 0x320)
    assert tri.header.exception_offset == (0xF00 if is64 else 0x7D0)
    assert tri.context is not None
    assert tri.context.machine == a["machine"]
    assert tri.context.pc == a["context"][a["pc_name"]]  # type: ignore[index]
    assert tri.exception is not None
    assert tri.exception.parameters == (0xAA,)
    assert [(u.name, u.end - u.start) for u in tri.unloaded_drivers] == [("gone.sys", 0x8000)]
    assert [d.name for d in tri.drivers] == ["\\SystemRoot\\system32\\ntoskrnl.exe"]
    assert tri.broken_driver is tri.drivers[0]
    assert tri.kdbg is not None
    assert tri.kdbg.kern_base == a["kern"]
    # the copies land at their VAs through the pointer-sized KiProcessorBlock[1] / CurrentThread / ApcState.Process
    assert (_kv(tri)["prcb_address"], _kv(tri)["thread_address"], _kv(tri)["process_address"]) == (
        a["prcb_va"],
        a["thread_va"],
        a["process_va"],
    )
    assert tri.memory.read(int(a["top"]), 4) == bytes(tri.stack[:4])  # type: ignore[index,call-overload]
    hits = _kv(tri)["stack_scan"]
    assert [(h.address, h.module, h.offset) for h in hits] == [(a["top"], "ntoskrnl.exe", 0x1000)]
    # no offset table for these builds: identity is unknown, not guessed
    assert (_kv(tri)["process_name"], _kv(tri)["pid"], _kv(tri)["tid"]) == (None, None, None)
    assert [str(bl.tag) for bl in tri.blobs] == [str(uuid.UUID(int=5))]
    # and it rebuilds to the same bytes
    assert TriageDumpBuilder.from_triage(tri).build() == data


def test_x86_layout_specifics() -> None:
    b, _a = build_for("x86")
    data = b.build()
    # TRIAGE_DUMP32 at 0x1000 (0x68 bytes); sections start right after it, 8-aligned
    mm_offset, unloaded_offset = struct.unpack_from("<II", data, 0x1000 + 0x14)
    assert mm_offset == 0x1068
    assert unloaded_offset == 0x1068 + 0x34 + 4  # DUMP_MM_STORAGE32 is 0x34, then 8-alignment
    # unloaded drivers: a u32 count, then 0x28-byte entries
    assert struct.unpack_from("<I", data, unloaded_offset)[0] == 1
    driver_list, count = struct.unpack_from("<II", data, 0x1000 + 0x30)
    pool = struct.unpack_from("<I", data, 0x1000 + 0x38)[0]
    assert count == 1
    assert pool == driver_list + 0x4C + 4  # 0x4C-byte DUMP_DRIVER_ENTRY32, pool 8-aligned
    assert struct.unpack_from("<I", data, driver_list + 4 + 0x18)[0] == 0x82000000  # DllBase in KLDR32 (+0x18)
    assert struct.unpack_from("<I", data, 0xF88)[0] == 4  # DumpType in DUMP_HEADER32
