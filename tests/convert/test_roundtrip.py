"""Convert each inflated dump back and compare the small dump with the real Windows-written one.

The inflated dumps hold the real sample's bytes at their real addresses (dbgauto_testkit.dumpinflate, which parses the
sample independently of dbgauto), so every section the converter finds must equal the sample's own.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import pytest

from dbgauto.errors import MemoryAccessError
from dbgauto.kdump.constants import DumpType, TriageFlag
from dbgauto.kdump.reader import KernelDump

# Data-block floors, measured on the sample (1831 blocks). Blocks the policy cannot reproduce (see
# dbgauto/convert/policy.py "Limits"): nt's page at 0xFFFFF8047BA82000 (kernel-internal choice, probably unwind
# data), and ~14 windows whose pointers lie in memory Windows scanned but did not keep in the small dump, so
# the inflated dump cannot show them. Exact (address, size) matches are lower because clipping against
# earlier blocks depends on the order Windows visited pointers, which the file does not record.
MIN_BLOCKS_COVERED = 1810
MIN_BLOCKS_EXACT = 1700


@pytest.fixture(scope="module")
def original(triage_x64_path: Path) -> Any:
    with KernelDump.open(triage_x64_path) as d:
        yield d


def _open(path: Path) -> KernelDump:
    return KernelDump.open(path)


def test_sections_equal_the_real_small_dump(case: Any, original: KernelDump) -> None:
    want = original.triage
    with _open(case.output) as out:
        got = out.triage
        assert out.dump_type == DumpType.TRIAGE
        assert got.context is not None
        assert want.context is not None
        assert got.context.raw == want.context.raw
        assert got.exception == want.exception
        assert got.prcb == want.prcb
        assert got.process == want.process
        assert got.thread == want.thread
        assert got.stack == want.stack
        assert got.header.top_of_stack == want.header.top_of_stack == 0xFFFF850429890EE8
        assert got.header.size_of_call_stack == 0x2118
        assert got.kdbg is not None
        assert want.kdbg is not None
        assert got.kdbg.raw == want.kdbg.raw
        assert got.drivers == want.drivers
        assert got.unloaded_drivers == want.unloaded_drivers
        assert got.mm is not None
        assert want.mm is not None
        assert got.mm.raw == want.mm.raw


def test_driver_list_matches_groundtruth(cases: dict[str, Any], groundtruth_x64: dict[str, Any]) -> None:
    """Against the ground truth (rizin + an independent reader), not only against our reader of the sample."""
    with _open(cases["complete"].output) as out:
        got = [
            {"name": d.name, "base": hex(d.base), "size": hex(d.size), "timestamp": hex(d.timestamp)}
            | {"checksum": hex(d.checksum)}
            for d in out.triage.drivers
        ]
        unloaded = [{"name": u.name, "start": hex(u.start), "end": hex(u.end)} for u in out.triage.unloaded_drivers]
    keys = ("name", "base", "size", "timestamp", "checksum")
    assert got == [{k: d[k] for k in keys} for d in groundtruth_x64["drivers"]]
    assert unloaded == groundtruth_x64["unloaded_drivers"]
    assert len(got) == 151
    assert got[0]["name"] == "\\SystemRoot\\system32\\ntoskrnl.exe"


def test_header_facts_copied(case: Any, original: KernelDump) -> None:
    want = original.header
    with _open(case.output) as out:
        h = out.header
        for name in (
            "major_version",
            "minor_version",
            "directory_table_base",
            "pfn_database",
            "ps_loaded_module_list",
            "ps_active_process_head",
            "machine",
            "number_processors",
            "bugcheck_code",
            "bugcheck_parameters",
            "kd_debugger_data_block",
            "system_time_raw",
            "system_uptime_100ns",
            "product_type",
            "suite_mask",
            "writer_status",
            "kd_secondary_version",
            "comment",
            "attributes",
            "boot_id",
            "secondary_data_state",
            "physical_memory_runs",
        ):
            assert getattr(h, name) == getattr(want, name), name
        assert h.bugcheck_code == 0x1000007E
        assert h.mini_dump_fields == want.mini_dump_fields == 0xCFF
        assert h.mini_dump_fields & TriageFlag.DATA_BLOCKS
        assert h.required_dump_space == out.file_size  # Windows' own value is not knowable from the source
        assert case.result.source_dump_type == case.inflated.dump_type


def test_data_blocks_cover_the_samples(case: Any, original: KernelDump) -> None:
    want = original.triage
    blocks = [(b.address, bytes(want.buffer[b.offset : b.offset + b.size])) for b in want.data_blocks]
    with _open(case.output) as out:
        got = out.triage
        exact = {(b.address, b.size) for b in got.data_blocks} & {(a, len(d)) for a, d in blocks}
        missing = []
        for address, data in blocks:
            try:
                same = got.memory.read(address, len(data)) == data
            except MemoryAccessError:
                same = False
            if not same:
                missing.append((address, len(data)))
        spans = sorted((b.address, b.address + b.size) for b in got.data_blocks)
    covered = len(blocks) - len(missing)
    print(
        f"\n{case.name}: output {len(spans)} blocks; of the sample's {len(blocks)}: {covered} covered byte for byte, "
        f"{len(exact)} identical (address and size); not covered: " + ", ".join(f"{a:#x}+{s:#x}" for a, s in missing)
    )
    assert all(e <= s for (_, e), (s, _) in itertools.pairwise(spans)), "data blocks overlap"
    assert covered >= MIN_BLOCKS_COVERED
    assert len(exact) >= MIN_BLOCKS_EXACT
    # The fixed groups are all there: every PRCB, KiProcessorBlock, the PC's page, nt's header page.
    have = {a for a, _ in spans}
    assert 0xFFFFF8047C6FDC80 in have  # KiProcessorBlock
    assert 0xFFFFF8048B583000 in have  # the faulting PC's page
    assert 0xFFFFF8047BA00000 in have  # KernBase (nt's PE header)
    assert {a for a, d in blocks if len(d) == 0xAF00} <= have  # all 16 KPRCBs


def test_encoded_variant_really_is_encoded(cases: dict[str, Any], small: Any) -> None:
    case = cases["encoded-kdbg"]
    with _open(case.inflated.path) as big:
        raw = big.read_virtual(small.kdbg_va, 0x20)
    assert raw[0x10:0x14] != b"KDBG"
    with _open(case.output) as out:
        assert out.triage.kdbg is not None
        assert out.triage.kdbg.raw[0x10:0x14] == b"KDBG"


def test_result_and_source_untouched(cases: dict[str, Any], tmp_path: Path) -> None:
    from dbgauto.engines.jobs import convert_dump

    case = cases["kernel-bitmap"]
    assert case.result.output == case.output
    assert case.result.size == case.output.stat().st_size
    assert case.result.engine == "native"
    assert [w for w in case.result.warnings if not w.startswith("data blocks: skipped memory")] == []
    assert case.result.elapsed > 0
    src = case.inflated.path
    before = (hashlib.sha256(src.read_bytes()).digest(), src.stat().st_mtime_ns)
    again = convert_dump(src, tmp_path / "again.mini.dmp")
    assert (hashlib.sha256(src.read_bytes()).digest(), src.stat().st_mtime_ns) == before
    assert again.output.read_bytes() == case.output.read_bytes()  # the same source gives the same small dump


def test_small_dump_source_is_copied_unchanged(triage_x64_path: Path, tmp_path: Path) -> None:
    from dbgauto.engines.jobs import convert_dump

    res = convert_dump(triage_x64_path, tmp_path)
    assert res.output == tmp_path / "triage_x64.mini.dmp"
    assert res.output.read_bytes() == triage_x64_path.read_bytes()
    assert res.warnings == ["already a small memory dump; copied unchanged"]
    assert res.source_dump_type == DumpType.TRIAGE


def test_kernel_walk_gives_the_parts(cases: dict[str, Any]) -> None:
    from dbgauto.kernel.walk import walk_kernel

    with _open(cases["kernel-bitmap"].inflated.path) as big:
        parts = walk_kernel(big)
    assert parts.processor == 0
    assert parts.thread_va == 0xFFFFC08BDE9E1640
    assert parts.process_va == 0xFFFFC08BDCE94180
    assert parts.process is not None
    assert parts.process[0x5A8:0x5AE] == b"System"
    assert parts.drivers[2].name == "\\SystemRoot\\system32\\kd.dll"
