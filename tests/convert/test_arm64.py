"""ARM64 large dumps → small memory dumps natively: synthetic ARM64 kernel worlds (dbgauto_testkit.dumpinflate,
AArch64 tables built by dbgauto_testkit.dumpsynth, never through dbgauto) written as Complete (1), Active bitmap (5)
and Kernel bitmap (6) dumps, converted, and read back by dbgauto's reader and by the testkit's spec-based small-dump
parser (``dumpinflate.parse``): every part must equal what the world placed."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from dbgauto_testkit import dumpinflate

from dbgauto.engines.jobs import convert_dump, facts_from_dump
from dbgauto.errors import ConversionError
from dbgauto.kdump.constants import Machine
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.kdbg import KdbgKeys
from dbgauto.kernel.open import read_parts

SKIPPED_BLOCKS = "data blocks: skipped memory not in the dump"
CRASH_TIME = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
ARM64_CONTEXT_SIZE = 0x390  # kd-structures.md §6


@dataclass(frozen=True)
class Case:
    dump_type: int
    bugcheck: int
    culprit: str | None
    processors: int

    @property
    def id(self) -> str:
        return f"arm64-type{self.dump_type}-{self.bugcheck:#x}"


CASES = (
    Case(1, 0x50, "acmefilt.sys", 4),
    Case(5, 0x3B, None, 2),
    Case(6, 0xD1, "tcpip.sys", 3),
)
_BUILT: dict[Case, dict[str, Any]] = {}


@pytest.fixture(params=CASES, ids=lambda c: c.id)
def converted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    case: Case = request.param
    if case not in _BUILT:
        folder = tmp_path_factory.mktemp(case.id)
        made = dumpinflate.write_kworld(
            folder / "MEMORY.DMP",
            "arm64",
            case.dump_type,
            seed=11 + CASES.index(case),
            bugcheck=case.bugcheck,
            culprit=case.culprit,
            processors=case.processors,
            system_time=CRASH_TIME,
            uptime_seconds=7_322,
        )
        res = convert_dump(made.path, folder / "small.dmp")
        _BUILT[case] = {"case": case, "made": made, "world": made.world, "res": res}
    return _BUILT[case]


def test_the_source_is_an_arm64_dump(converted: dict[str, Any]) -> None:
    made, case = converted["made"], converted["case"]
    raw = made.path.read_bytes()[:0x2000]
    assert raw[:8] == b"PAGEDU64"
    assert struct.unpack_from("<I", raw, 0x30)[0] == 0xAA64  # MachineImageType
    assert struct.unpack_from("<I", raw, 0xF98)[0] == case.dump_type
    with KernelDump.open(made.path) as d:
        assert d.machine == Machine.ARM64
        w = converted["world"]
        assert d.read_virtual(w.kdbg_va, len(w.kdbg)) == w.kdbg  # through AArch64 tables


def test_dbgauto_reads_back_every_part(converted: dict[str, Any]) -> None:
    w, res, case = converted["world"], converted["res"], converted["case"]
    assert [m for m in res.warnings if not m.startswith(SKIPPED_BLOCKS)] == []
    cpu = w.cpus[w.crashing_cpu]
    with KernelDump.open(res.output) as out:
        assert out.machine == Machine.ARM64
        assert out.is_64bit
        h = out.header
        assert (h.bugcheck_code, tuple(h.bugcheck_parameters)) == (case.bugcheck, w.bugcheck_parameters)
        assert h.number_processors == case.processors
        assert h.minor_version == w.build
        assert h.system_time == CRASH_TIME
        tri = out.triage
        assert tri.header.context_offset == 0x348  # the header's own ContextRecord, as Windows writes it
        assert tri.header.exception_offset == 0xF00
        assert tri.context is not None
        assert tri.context.raw == w.fields.context  # the 0x390-byte ARM64 CONTEXT, byte for byte
        assert (tri.context.sp, tri.context.pc) == (w.header_sp, w.header_pc)
        assert tri.prcb == cpu.prcb
        assert tri.thread == cpu.thread
        assert tri.process == w.process
        assert tri.header.top_of_stack == cpu.saved_sp
        assert tri.stack == w.stack
        assert tri.kdbg is not None
        assert tri.kdbg.raw == w.kdbg
        drivers = [(d.name, d.base, d.size, d.timestamp, d.checksum) for d in tri.drivers]
        assert drivers == [(m.name, m.base, m.size, m.timestamp, m.checksum) for m in w.modules]
        assert [(u.name, u.start, u.end) for u in tri.unloaded_drivers] == [
            (u.name[:12], u.start, u.end) for u in w.unloaded
        ]
        assert tri.mm is not None
        assert tri.mm.fields["mm_special_pool_tag"] == 0x6C6F6F50  # 'Pool', placed at MmSpecialPoolTag
        assert tri.mm.fields["mm_maximum_non_paged_pool"] == 0x1_0000_0000
        blocks = {b.address: b.size for b in tri.data_blocks}
        assert blocks[w.processor_block] == case.processors * 8
        assert w.fault_address & ~0xFFF in blocks  # the culprit's faulting code page
        for c in w.cpus:  # every processor's KPRCB and saved ARM64 CONTEXT (0x390 bytes)
            assert blocks[c.prcb_va] == len(c.prcb)
            assert blocks[c.context_va] == ARM64_CONTEXT_SIZE


def test_independent_reader_agrees(converted: dict[str, Any]) -> None:
    """The testkit's small-dump parser (TRIAGE_DUMP64 at 0x2000, offsets from the spec) reads the same parts."""
    w, res = converted["world"], converted["res"]
    cpu = w.cpus[w.crashing_cpu]
    sd = dumpinflate.parse(res.output)
    assert sd.machine == 0xAA64
    assert sd.triage["ContextOffset"] == 0x348
    assert sd.context == w.fields.context
    assert (sd.prcb, sd.thread, sd.process) == (cpu.prcb, cpu.thread, w.process)
    assert (sd.top_of_stack, sd.stack) == (cpu.saved_sp, w.stack)
    assert sd.kdbg == w.kdbg
    assert [(d.name, d.base, d.size, d.timestamp, d.checksum) for d in sd.drivers] == [
        (m.name, m.base, m.size, m.timestamp, m.checksum) for m in w.modules
    ]
    assert [(u.name, u.start, u.end) for u in sd.unloaded] == [(u.name[:12], u.start, u.end) for u in w.unloaded]
    assert sd.blocks
    for va, data in sd.blocks:  # every data block holds the world's bytes at its VA (the builder's own record)
        assert w.space.read_virtual(va, len(data)) == data, hex(va)
    raw = res.output.read_bytes()
    size_of_dump, valid_offset = struct.unpack_from("<II", raw, 0x2004)
    assert raw[valid_offset : valid_offset + 4] == b"TRGD"
    assert size_of_dump == valid_offset + 4


def test_facts_of_the_arm64_small_dump(converted: dict[str, Any]) -> None:
    w, res, case = converted["world"], converted["res"], converted["case"]
    facts = facts_from_dump(res.output)
    assert facts.bugcheck is not None
    assert facts.bugcheck.code == case.bugcheck
    assert facts.crash_time == CRASH_TIME
    assert [d.name for d in facts.drivers] == [m.base_name for m in w.modules]
    assert facts.culprit is not None
    assert (facts.culprit.name, facts.culprit.address) == (w.culprit.base_name, w.fault_address)
    large = facts_from_dump(converted["made"].path)  # the large dump's facts, through the ARM64 kernel walk
    assert large.culprit is not None
    assert (large.culprit.name, large.culprit.address) == (w.culprit.base_name, w.fault_address)
    assert [d.name for d in large.drivers] == [m.base_name for m in w.modules]


def test_encoded_arm64_kdbg_needs_keys(tmp_path: Any) -> None:
    """No symbol-less key scan exists for A64 code: an encoded block is refused, and decoded with the keys."""
    made = dumpinflate.write_kworld(tmp_path / "enc.dmp", "arm64", 6, seed=5, encoded=True)
    w = made.world
    assert w.keys is not None
    assert w.kdbg_stored[0x10:0x14] != b"KDBG"
    with pytest.raises(ConversionError, match=r"ARM64 KDBG .* symbols"):
        convert_dump(made.path, tmp_path / "no-keys.dmp")
    keys = KdbgKeys(*w.keys)
    res = convert_dump(made.path, tmp_path / "keys.dmp", keys=keys)
    with KernelDump.open(res.output) as out:
        assert out.triage.kdbg is not None
        assert out.triage.kdbg.raw == w.kdbg
    with KernelDump.open(made.path) as d:
        parts = read_parts(d, keys=keys)
        assert parts.kdbg is not None
        assert parts.kdbg.encoded
        assert parts.processor == w.crashing_cpu


def test_layout_matches_a_windows_written_arm64_small_dump(converted: dict[str, Any]) -> None:
    """Field by field against the TRIAGE_DUMP64 of a real Windows ARM64 small dump (build 22000), as rizin's test
    suite prints it (rizinorg/rizin ``test/db/formats/dmp/dmp``, "Triage Dump Debug arm64", file
    ``bins/dmp/triage_arm64.dmp``): ContextOffset 0x348, ExceptionOffset 0xF00, MmOffset 0x2080 (TRIAGE_DUMP64 of
    0x80 bytes at 0x2000), UnloadedDriversOffset 0x20D0 (a 0x50-byte DUMP_MM_STORAGE64), PrcbOffset 0x2340 =
    0x20D0 + 8 + 11 x 0x38 (a u64 count and 0x38-byte entries), KDBG copy (DebuggerDataSize 0x380) right before
    the driver list (0xDAB0 + 0x380 = 0xDE30), 0x90-byte driver entries up to the string pool (0xDE30 + 0xF5 x 0x90
    = 0x16800), ValidOffset = SizeOfDump - 4, TriageOptions 0xFFFFFFFF, TopOfStack where the stack copy begins."""
    w, res = converted["world"], converted["res"]
    raw = res.output.read_bytes()
    names = ("ServicePackBuild", "SizeOfDump", "ValidOffset", "ContextOffset", "ExceptionOffset", "MmOffset")
    names += ("UnloadedDriversOffset", "PrcbOffset", "ProcessOffset", "ThreadOffset", "CallStackOffset")
    names += ("SizeOfCallStack", "DriverListOffset", "DriverCount", "StringPoolOffset", "StringPoolSize")
    names += ("BrokenDriverOffset", "TriageOptions")
    t = dict(zip(names, struct.unpack_from("<18I", raw, 0x2000), strict=True))
    kdbg_off, kdbg_size = struct.unpack_from("<II", raw, 0x2070)
    assert (t["ContextOffset"], t["ExceptionOffset"], t["MmOffset"], t["UnloadedDriversOffset"]) == (
        0x348,
        0xF00,
        0x2080,
        0x20D0,
    )
    assert t["PrcbOffset"] == 0x20D0 + 8 + 0x38 * len(w.unloaded)
    assert t["TriageOptions"] == 0xFFFFFFFF
    assert t["ValidOffset"] == t["SizeOfDump"] - 4
    assert kdbg_size == 0x380
    assert t["DriverListOffset"] == kdbg_off + kdbg_size
    assert t["StringPoolOffset"] == t["DriverListOffset"] + 0x90 * t["DriverCount"]
    order = [t[k] for k in ("PrcbOffset", "ProcessOffset", "ThreadOffset", "CallStackOffset")]
    assert order == sorted(order)
    assert order[-1] < kdbg_off
