"""KernelDump on the real small dump (ground truth) and on hand-built headers."""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kdump_handmade import bitmap_dump, header, page_of

from dbgauto.errors import DumpFormatError, PageNotPresentError, TranslationError
from dbgauto.kdump.constants import DumpType
from dbgauto.kdump.detect import sniff_path
from dbgauto.kdump.reader import KernelDump


def _hex(s: str | int) -> int:
    return int(s, 16) if isinstance(s, str) else s


def test_real_triage_header_matches_ground_truth(triage_x64_path: Path, groundtruth_x64: dict[str, Any]) -> None:
    gt = groundtruth_x64
    with KernelDump.open(triage_x64_path) as d:
        h = d.header
        assert d.file_size == gt["file_size"]
        assert h.signature.decode() == gt["signature"]
        assert d.dump_type == gt["dump_type"] == DumpType.TRIAGE
        assert h.major_version == _hex(gt["major_version"])
        assert h.minor_version == gt["minor_version_build"]
        assert h.machine == d.machine == _hex(gt["machine"])
        assert h.number_processors == _hex(gt["number_processors"])
        assert h.bugcheck_code == _hex(gt["bugcheck_code"])
        assert list(h.bugcheck_parameters) == [_hex(p) for p in gt["bugcheck_parameters"]]
        assert h.directory_table_base == _hex(gt["DirectoryTableBase"])
        assert h.pfn_database == _hex(gt["PfnDataBase"])
        assert h.ps_loaded_module_list == _hex(gt["PsLoadedModuleList"])
        assert h.ps_active_process_head == _hex(gt["PsActiveProcessHead"])
        assert h.kd_debugger_data_block == _hex(gt["KdDebuggerDataBlock"])
        assert h.product_type == _hex(gt["ProductType"])
        assert h.suite_mask == _hex(gt["SuiteMask"])
        assert h.secondary_data_state is None
        assert gt["SecondaryDataState"] is None
        assert h.system_time_raw == _hex(gt["system_time"]["filetime"])
        assert h.system_time is not None
        assert h.system_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ") == gt["system_time"]["utc"]
        assert h.system_uptime_100ns == _hex(gt["system_uptime"]["raw_100ns"])
        assert h.system_uptime_seconds == pytest.approx(gt["system_uptime"]["seconds"])
        assert h.required_dump_space == _hex(gt["required_dump_space"])
        assert h.mini_dump_fields == _hex(gt["mini_dump_fields"])
        assert h.writer_status == gt["writer_status"]
        assert h.kd_secondary_version == gt["kd_secondary_version"]
        assert h.attributes is None
        assert gt["attributes"] is None
        assert h.boot_id is None
        assert gt["boot_id"] is None
        assert h.comment is None
        assert gt["comment"] is None
        ex = gt["exception_record"]
        assert h.exception is not None
        assert h.exception.code == _hex(ex["ExceptionCode"])
        assert h.exception.flags == _hex(ex["ExceptionFlags"])
        assert h.exception.record == _hex(ex["ExceptionRecord"])
        assert h.exception.address == _hex(ex["ExceptionAddress"])
        assert h.exception.number_parameters == _hex(ex["NumberParameters"])
        ctx = h.context
        assert ctx is not None
        names = {"SegCs": "cs", "SegDs": "ds", "SegEs": "es", "SegFs": "fs", "SegGs": "gs", "SegSs": "ss",
                 "EFlags": "efl", "ContextFlags": "context_flags", "MxCsr": "mxcsr"}  # fmt: skip
        for key, value in gt["context_all"].items():
            assert ctx.registers[names.get(key, key.lower())] == _hex(value), key
        assert (ctx.pc, ctx.sp, ctx.fp) == tuple(_hex(gt["context_main"][k]) for k in ("rip", "rsp", "rbp"))
        assert d.header.physical_memory_runs is None  # the run table is "PAGE" filler in this file
        assert d.variety.name == "Small Memory Dump"
        assert not d.has_physical_memory
        assert d.pages_present is None
        assert d.pages_total is None
        with pytest.raises(PageNotPresentError):
            d.read_physical(0x1000, 8)
        with pytest.raises(TranslationError):
            d.read_virtual(_hex(gt["PsLoadedModuleList"]), 8)


def test_open_never_modifies_the_file(triage_x64_path: Path) -> None:
    before = hashlib.sha256(triage_x64_path.read_bytes()).hexdigest()
    with KernelDump.open(triage_x64_path) as d:
        assert d.buffer.readonly
        with pytest.raises(TypeError):
            d.buffer[0] = 0  # type: ignore[index]
    assert hashlib.sha256(triage_x64_path.read_bytes()).hexdigest() == before


def test_sniff_reads_only_the_header(triage_x64_path: Path) -> None:
    s = sniff_path(triage_x64_path)
    assert (s.is_64bit, s.header_size, s.dump_type, s.machine_name) == (True, 0x2000, 4, "AMD64")


def test_page_filler_fields_are_none_never_numbers(tmp_path: Path) -> None:
    p = tmp_path / "filler.dmp"
    p.write_bytes(bitmap_dump({1: page_of(1)}, 64))  # only DumpType/machine set; the rest stays "PAGE"
    with KernelDump.open(p) as d:
        h = d.header
        assert h.signature == b"PAGEDU64"
        for name in ("directory_table_base", "pfn_database", "ps_loaded_module_list", "kd_debugger_data_block",
                     "number_processors", "bugcheck_code", "system_time", "system_time_raw", "system_uptime_100ns",
                     "comment", "product_type", "suite_mask", "writer_status", "kd_secondary_version",
                     "attributes", "boot_id", "secondary_data_state", "physical_memory_runs",
                     "physical_memory_pages", "context", "exception", "required_dump_space"):  # fmt: skip
            assert getattr(h, name) is None, name
        with pytest.raises(TranslationError, match="DirectoryTableBase"):
            d.translate(0x1000)


def test_header_fields_decode_64_and_32_bit(tmp_path: Path) -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    ft = (when - datetime(1601, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 10 + 7  # +7: sub-µs, dropped
    for is_64bit in (True, False):
        h = header(is_64bit, 6, dtb=0x1AD000, kdbg=0x8123_4560, processors=4, bugcheck_code=0xD1,
                   system_time=ft, uptime=36_000_000_000, attributes=0x50)  # fmt: skip
        comment_off = 0xFB0 if is_64bit else 0x820
        h[comment_off : comment_off + 6] = b"hello\0"
        h += b"SDMP" + b"DUMP" + bytes(0x18) + struct.pack("<QQQ", len(h) + 0x38 + 8, 0, 64) + bytes(8)
        p = tmp_path / f"h{is_64bit}.dmp"
        p.write_bytes(bytes(h))
        with KernelDump.open(p) as d:
            x = d.header
            assert (x.directory_table_base, x.kd_debugger_data_block, x.number_processors) == (0x1AD000, 0x81234560, 4)
            assert x.bugcheck_code == 0xD1
            assert x.system_time == when
            assert x.system_time_raw == ft
            assert x.system_uptime_seconds == 3600.0
            assert x.comment == "hello"
            assert x.attributes == 0x50
            assert d.is_64bit is is_64bit
            assert d.header_size == (0x2000 if is_64bit else 0x1000)
            assert d.pages_present == 0
            assert d.pages_total == 64
            assert d.variety.name == "Live Kernel Memory Dump"  # Attributes 0x50: bit 4 LiveDumpGeneratedDump


def test_triage_property_refuses_large_dumps(tmp_path: Path) -> None:
    p = tmp_path / "k.dmp"
    p.write_bytes(bitmap_dump({1: page_of(1)}, 64))
    with KernelDump.open(p) as d, pytest.raises(DumpFormatError, match="not a small memory dump"):
        _ = d.triage


def test_close_is_idempotent_and_views_do_not_break_it(tmp_path: Path) -> None:
    p = tmp_path / "k.dmp"
    p.write_bytes(bitmap_dump({1: page_of(1)}, 64))
    d = KernelDump.open(p)
    data = d.read_physical(0x1000, 16)
    d.close()
    d.close()
    assert data == page_of(1)[:16]


def test_byte_fields_next_to_filler(tmp_path: Path) -> None:
    """PaeEnabled written, KdSecondaryVersion left as the filler's 'A': one present, one absent."""
    h = header(False, 6)
    h[0x5C] = 1  # only the PaeEnabled byte; 0x5D..0x5F still read "AGE"
    h += b"SDMPDUMP" + bytes(0x18) + struct.pack("<QQQ", len(h) + 0x38 + 8, 0, 64) + bytes(8)
    p = tmp_path / "pae.dmp"
    p.write_bytes(bytes(h))
    with KernelDump.open(p) as d:
        assert d.header.pae_enabled is True
        assert d.header.kd_secondary_version is None
