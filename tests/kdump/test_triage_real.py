"""The small-dump reader against the real Windows-written sample and its ground truth (rizin + cross-check reader)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from dbgauto.errors import PageNotPresentError
from dbgauto.kdump.reader import KernelDump
from dbgauto.kdump.triage import TriageDump
from dbgauto.kernel.smalldump import kernel_view, parts_from_triage
from dbgauto.kernel.stackscan import ModuleIndex


def _kv(tri: Any) -> dict[str, Any]:
    """What the kernel layer establishes from the small dump's copies (addresses, identity, stack scan)."""
    return kernel_view(parts_from_triage(tri))


def _x(s: str) -> int:
    return int(s, 16)


def test_main_header_fields(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    g = groundtruth_x64
    h = tri.dump_header
    assert tri.machine == _x(g["machine"])
    assert h["bugcheck_code"] == _x(g["bugcheck_code"])
    assert list(h["bugcheck_parameters"]) == [_x(p) for p in g["bugcheck_parameters"]]
    assert h["minor_version"] == g["minor_version_build"]
    assert h["number_processors"] == _x(g["number_processors"])
    assert h["kd_debugger_data_block"] == _x(g["KdDebuggerDataBlock"])
    assert h["system_time"] == _x(g["system_time"]["filetime"])
    assert h["system_up_time"] == _x(g["system_uptime"]["raw_100ns"])
    assert h["required_dump_space"] == _x(g["required_dump_space"])
    assert h["mini_dump_fields"] == _x(g["mini_dump_fields"])
    assert h["secondary_data_state"] is None
    assert h["attributes"] is None
    assert h["boot_id"] is None
    d = tri.to_dict()
    assert d["dump_header"]["system_time_utc"] == g["system_time"]["utc"]
    assert d["dump_header"]["system_up_time_seconds"] == pytest.approx(g["system_uptime"]["seconds"])


def test_triage_header_every_field(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    g = groundtruth_x64["triage_header"]
    names = {
        "ArchSpecific0": "bstore_offset",
        "ArchSpecific1": "size_of_bstore",
        "ArchSpecific2": "limit_of_bstore",
    }
    h = tri.header.as_dict()
    for key, value in g.items():
        snake = names.get(key) or "".join("_" + c.lower() if c.isupper() else c for c in key).lstrip("_")
        assert h[snake] == _x(value), key
    assert tri.valid
    assert groundtruth_x64["valid_marker"] == "TRGD"
    assert tri.warnings == []


def test_context_and_exception(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    g = groundtruth_x64["context_all"]
    names = {"ContextFlags": "context_flags", "EFlags": "efl", "MxCsr": "mxcsr"}
    assert tri.context is not None
    for key, value in g.items():
        reg = names.get(key) or (key[3:].lower() if key.startswith("Seg") else key.lower())
        assert tri.context.registers[reg] == _x(value), key
    assert tri.context.pc == _x(groundtruth_x64["context_main"]["rip"])
    e = groundtruth_x64["exception_record"]
    assert tri.exception is not None
    assert (tri.exception.code, tri.exception.flags, tri.exception.address) == (
        _x(e["ExceptionCode"]),
        _x(e["ExceptionFlags"]),
        _x(e["ExceptionAddress"]),
    )
    assert tri.exception.number_parameters == _x(e["NumberParameters"])
    assert tri.exception.parameters == ()


def test_drivers(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    g = groundtruth_x64["drivers"]
    assert len(tri.drivers) == len(g) == 151
    for d, gd in zip(tri.drivers, g, strict=True):
        assert (d.name, d.base, d.size, d.timestamp, d.checksum) == (
            gd["name"],
            _x(gd["base"]),
            _x(gd["size"]),
            _x(gd["timestamp"]),
            _x(gd["checksum"]),
        )
    assert tri.broken_driver is None


def test_unloaded_drivers(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    got = [{"name": u.name, "start": f"{u.start:#x}", "end": f"{u.end:#x}"} for u in tri.unloaded_drivers]
    assert got == groundtruth_x64["unloaded_drivers"]


def test_process_and_thread(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    p, t = groundtruth_x64["process"], groundtruth_x64["thread"]
    assert (_kv(tri)["process_name"], _kv(tri)["pid"], _kv(tri)["tid"]) == (p["image_file_name"], p["pid"], t["tid"])
    assert tri.process is not None
    assert len(tri.process) == _x(p["eprocess_copy_size"])
    assert tri.thread is not None
    assert len(tri.thread) == _x(t["ethread_copy_size"])


def test_data_blocks(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    g = groundtruth_x64["data_blocks"]
    s = g["summary"]
    blocks = tri.data_blocks
    assert len(blocks) == g["count"] == 1831
    as_hex = [[f"{b.address:#x}", f"{b.offset:#x}", f"{b.size:#x}"] for b in blocks]
    assert as_hex[:5] == s["first5"]
    assert as_hex[-3:] == s["last3"]
    assert sum(b.size for b in blocks) == s["total_bytes"]
    assert min(b.size for b in blocks) == s["min_size"]
    assert max(b.size for b in blocks) == s["max_size"]
    assert blocks[0].offset == s["first_data_offset"]
    assert blocks[-1].offset + blocks[-1].size == s["last_data_end"]


def test_blobs(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    g = groundtruth_x64["blobs_after_triage"]
    assert len(tri.blobs) == g["count"] == 20
    fh = tri.blob_file_header
    assert fh is not None
    assert (fh.offset, fh.header_size, fh.build_number) == (
        g["blobs"]["file_header_off"],
        g["blobs"]["HeaderSize"],
        g["blobs"]["BuildNumber_raw"],
    )
    for b, gb in zip(tri.blobs, g["blobs"]["blobs"], strict=True):
        assert (b.offset, b.header_size, str(b.tag), b.data_size, b.pre_pad, b.post_pad, b.data_offset) == (
            gb["off"],
            gb["HeaderSize"],
            gb["Tag"],
            gb["DataSize"],
            gb["PrePad"],
            gb["PostPad"],
            gb["data_off"],
        )
        assert tri.blob_data(b)[:16].hex() == gb["data_head"][: 2 * min(16, b.data_size)]


def test_kdbg_fields(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    k = tri.kdbg
    assert k is not None
    assert k.owner_tag_ok
    assert k.size == 0x380
    assert k.address == _x(groundtruth_x64["KdDebuggerDataBlock"])
    assert k.ps_loaded_module_list == _x(groundtruth_x64["PsLoadedModuleList"])
    assert k.kern_base == _x(groundtruth_x64["drivers"][0]["base"])  # ntoskrnl is entry 0
    assert k.get("MmPfnDatabase") is not None
    # Fields past Header.Size (0x380) do not exist on 19041: absent, not zero.
    assert "PointerAuthMask" not in k.fields
    assert "OffsetKThreadShadowStackLimit" not in k.fields
    assert k.get("SizeEThread") == 0x898
    assert k.get("SizeEProcess") == 0xA40
    assert k.get("SizePrcb") == 0xAF00


def test_virtual_view(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    mem = parts_from_triage(tri).memory.view  # type: ignore[union-attr]
    h = tri.header
    assert tri.top_of_stack is not None
    assert tri.stack is not None
    assert mem.read(tri.top_of_stack, 16) == tri.stack[:16]
    assert mem.read(_x(groundtruth_x64["KdDebuggerDataBlock"]) + 0x10, 4) == b"KDBG"
    # the thread and process copies at the VAs derived through the KDBG offsets
    assert _kv(tri)["thread_address"] is not None
    assert _kv(tri)["process_address"] is not None
    assert _kv(tri)["prcb_address"] is not None
    assert mem.read(_kv(tri)["thread_address"], 0x100) == tri.thread[:0x100]
    assert mem.read(_kv(tri)["process_address"] + 0x5A8, 6) == b"System"
    # the PRCB copy is also a data block (byte-identical): the view must find it at KiProcessorBlock[0]
    first = tri.data_blocks[1]
    assert _kv(tri)["prcb_address"] == first.address
    assert h.prcb_offset != first.offset
    # a read spanning the end of the stack copy into the unmapped page raises, naming the first absent byte
    stack_end = tri.top_of_stack + len(tri.stack)
    with pytest.raises(PageNotPresentError) as ei:
        mem.read(stack_end - 8, 16)
    assert ei.value.address == stack_end
    with pytest.raises(PageNotPresentError):
        mem.read(0x1000, 1)
    # a read spanning two adjacent data blocks is served from both
    blocks = sorted(tri.data_blocks)
    pair = next((a, b) for a, b in itertools.pairwise(blocks) if a.address + a.size == b.address)
    a, b = pair
    joined = mem.read(a.address + a.size - 4, 8)
    buf = tri.buffer
    assert joined == bytes(buf[a.offset + a.size - 4 : a.offset + a.size]) + bytes(buf[b.offset : b.offset + 4])


def test_stack_scan(tri: TriageDump) -> None:
    hits = _kv(tri)["stack_scan"]
    assert hits
    # The first stack qword is KeBugCheckEx's return address: inside ntoskrnl (observed-triage-x64.md)
    nt = tri.drivers[0]
    assert hits[0].address == tri.top_of_stack
    assert hits[0].module == "ntoskrnl.exe"
    for h in hits:
        d = ModuleIndex(tri.drivers).at(h.value)
        assert d is not None
        assert d.base + h.offset == h.value
        assert h.offset < d.size
    # the faulting RIP from the bugcheck parameters appears on the stack, in its driver
    rip = tri.dump_header["bugcheck_parameters"][1]
    assert any(h.value == rip for h in hits)
    assert nt.base <= hits[0].value < nt.base + nt.size


def test_to_dict_is_json_and_complete(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    d = json.loads(json.dumps(tri.to_dict(include_data_blocks=True, kernel=_kv(tri)), default=lambda v: list(v)))
    assert d["drivers"] == groundtruth_x64["drivers"]
    assert d["unloaded_drivers"] == groundtruth_x64["unloaded_drivers"]
    assert (d["process_name"], d["pid"], d["tid"]) == ("System", 4, 264)
    assert d["data_blocks"]["count"] == 1831
    assert d["data_blocks"]["blocks"][:5] == (groundtruth_x64["data_blocks"]["summary"]["first5"])
    assert [b["tag"] for b in d["blobs"]] == [b["Tag"] for b in groundtruth_x64["blobs_after_triage"]["blobs"]["blobs"]]
    assert d["context"]["registers"]["rip"] == groundtruth_x64["context_main"]["rip"]
    assert d["kdbg"]["fields"]["PsLoadedModuleList"] == groundtruth_x64["PsLoadedModuleList"]
    assert d["stack_scan"]
    assert d["warnings"] == []


def test_to_dict_summarises_data_blocks_by_default(tri: TriageDump, groundtruth_x64: dict[str, Any]) -> None:
    s = groundtruth_x64["data_blocks"]["summary"]
    d = tri.to_dict()["data_blocks"]
    assert d["blocks"] is None
    assert (d["count"], d["total_bytes"]) == (1831, s["total_bytes"])
    assert (d["first"], d["last"]) == (s["first5"][0], s["last3"][-1])


def test_through_kernel_dump_reader(triage_x64_path: Path) -> None:
    with KernelDump.open(triage_x64_path) as dump:
        tri = dump.triage
        assert len(tri.drivers) == 151
        assert _kv(tri)["pid"] == 4
