"""Synthetic kernel worlds (dbgauto_testkit.dumpinflate.kworld, built from spec offsets, independent of dbgauto) written
as Complete, Active and Kernel bitmap dumps for x64 (plain and encoded KDBG), x86 PAE and x86 non-PAE: the
converter must find every part the world placed, the facts must name the chosen culprit, and kdmp-parser (a peer)
must read the x64 structures at the same VAs."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dbgauto_testkit import dumpinflate
from kdmp_peer import read_virtual

from dbgauto.engines.jobs import convert_dump, facts_from_dump
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.smalldump import kernel_view, parts_from_triage

SKIPPED_BLOCKS = "data blocks: skipped memory not in the dump"

def _kv(tri: Any) -> dict[str, Any]:
    """What the kernel layer establishes from the small dump's copies (addresses, identity, stack scan)."""
    return kernel_view(parts_from_triage(tri))



@dataclass(frozen=True)
class Case:
    arch: str
    dump_type: int
    encoded: bool = False
    bugcheck: int = 0xD1
    culprit: str | None = None
    processors: int = 2

    @property
    def id(self) -> str:
        return f"{self.arch}-type{self.dump_type}{'-encoded' if self.encoded else ''}-{self.bugcheck:#x}"


CASES = (
    Case("x64", 1, bugcheck=0x50, culprit="acmefilt.sys", processors=4),
    Case("x64", 5, bugcheck=0x3B),
    Case("x64", 6),
    Case("x64", 6, encoded=True, bugcheck=0x7E, culprit="gpuhelper.sys", processors=3),
    Case("x86pae", 1, bugcheck=0x7E, culprit="crashy.sys"),
    Case("x86pae", 5, bugcheck=0x0A),
    Case("x86pae", 6, bugcheck=0x1E, culprit="tcpip.sys"),  # an inbox driver can be the culprit too
    Case("x86", 1, bugcheck=0xD1, processors=1),
    Case("x86", 5, bugcheck=0x3B),
    Case("x86", 6, bugcheck=0x50, culprit="vendornet.sys"),
)
CRASH_TIME = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


_BUILT: dict[Case, dict[str, Any]] = {}


def _convert(case: Case, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Write the case's world and convert it, once per test session."""
    if case not in _BUILT:
        folder = tmp_path_factory.mktemp(case.id)
        made = dumpinflate.write_kworld(
            folder / "MEMORY.DMP",
            case.arch,
            case.dump_type,
            seed=CASES.index(case),
            encoded=case.encoded,
            bugcheck=case.bugcheck,
            culprit=case.culprit,
            processors=case.processors,
            system_time=CRASH_TIME,
            uptime_seconds=86_461,
        )
        res = convert_dump(made.path, folder / "small.dmp")
        _BUILT[case] = {"case": case, "made": made, "world": made.world, "res": res}
    return _BUILT[case]


@pytest.fixture(params=CASES, ids=lambda c: c.id)
def converted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _convert(request.param, tmp_path_factory)


@pytest.fixture(params=[c for c in CASES if c.arch == "x64"], ids=lambda c: c.id)
def converted_x64(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _convert(request.param, tmp_path_factory)


def test_the_world_is_plausible(converted: dict[str, Any]) -> None:
    w, case = converted["world"], converted["case"]
    assert 10 <= len(w.modules) <= 30
    names = [m.base_name for m in w.modules]
    assert names[:2] == ["ntoskrnl.exe", "hal.dll"]
    assert len(set(names)) == len(names)
    spans = sorted((m.base, m.base + m.size) for m in w.modules)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # images do not overlap
    if case.culprit:
        assert w.culprit.base_name == case.culprit
    assert w.culprit.base <= w.fault_address < w.culprit.base + w.culprit.size
    assert len(w.cpus) == case.processors
    assert converted["made"].info.file_size < 64 << 20
    if case.encoded:
        assert w.kdbg_stored[0x10:0x14] != b"KDBG"
        assert w.kdbg[0x10:0x14] == b"KDBG"


def test_conversion_finds_every_part(converted: dict[str, Any]) -> None:
    w, res, case = converted["world"], converted["res"], converted["case"]
    assert [m for m in res.warnings if not m.startswith(SKIPPED_BLOCKS)] == []
    cpu = w.cpus[w.crashing_cpu]
    with KernelDump.open(res.output) as out:
        assert out.is_64bit == (case.arch == "x64")
        if case.arch != "x64":
            assert out.header.pae_enabled is (case.arch == "x86pae")
        assert out.header.bugcheck_code == case.bugcheck
        assert tuple(out.header.bugcheck_parameters) == w.bugcheck_parameters
        assert out.header.number_processors == case.processors
        assert out.header.minor_version == w.build
        assert out.header.system_time == CRASH_TIME
        tri = out.triage
        assert tri.context is not None
        assert (tri.context.sp, tri.context.pc) == (w.header_sp, w.header_pc)
        assert tri.prcb == cpu.prcb
        assert tri.thread == cpu.thread
        assert tri.process == w.process
        assert tri.header.top_of_stack == cpu.saved_sp
        assert tri.stack == w.stack
        assert len(tri.stack) == cpu.stack_base - cpu.saved_sp
        assert tri.kdbg is not None
        assert tri.kdbg.raw == w.kdbg  # decoded when it was stored encoded
        drivers = [(d.name, d.base, d.size, d.timestamp, d.checksum) for d in tri.drivers]
        assert drivers == [(m.name, m.base, m.size, m.timestamp, m.checksum) for m in w.modules]  # PE header values
        unloaded = [(u.name, u.start, u.end) for u in tri.unloaded_drivers]
        assert unloaded == [(u.name[:12], u.start, u.end) for u in w.unloaded]  # newest first, names cut as Windows
        blocks = {b.address: b.size for b in tri.data_blocks}
        assert blocks[w.processor_block] == case.processors * (8 if case.arch == "x64" else 4)
        assert w.fault_address & ~0xFFF in blocks  # the culprit's faulting code page
        # x64: the identity search and the build-19041 offset table agree; 32-bit (no table row): the search alone
        assert tuple(map(_kv(tri).get, ("process_name", "pid", "tid"))) == (w.process_name, w.pid, w.tid)


def test_facts_name_the_culprit(converted: dict[str, Any]) -> None:
    w, res, case = converted["world"], converted["res"], converted["case"]
    facts = facts_from_dump(res.output)
    assert facts.culprit is not None
    assert facts.culprit.name == w.culprit.base_name
    assert facts.culprit.base == w.culprit.base
    assert facts.culprit.address == w.fault_address
    assert facts.culprit.rule in ("faulting-instruction", "exception-address")  # the code-address rows
    assert facts.bugcheck is not None
    assert facts.bugcheck.code == case.bugcheck
    assert facts.crash_time == CRASH_TIME
    assert facts.uptime_seconds == 86_461
    assert [d.name for d in facts.drivers] == [m.base_name for m in w.modules]
    large = facts_from_dump(converted["made"].path)  # facts of the large dump agree
    assert large.culprit is not None
    assert large.culprit.name == w.culprit.base_name


def test_same_seed_same_world(tmp_path: Path) -> None:
    a = dumpinflate.build_kworld("x86pae", seed=7, bugcheck=0x50)
    b = dumpinflate.build_kworld("x86pae", seed=7, bugcheck=0x50)
    c = dumpinflate.build_kworld("x86pae", seed=8, bugcheck=0x50)
    assert a.placements == b.placements
    assert a.modules == b.modules
    assert a.modules != c.modules
    with pytest.raises(ValueError, match="menu"):
        dumpinflate.build_kworld("x64", bugcheck=0x133)
    with pytest.raises(ValueError, match="encoded"):
        dumpinflate.build_kworld("x86", encoded=True)


def test_kdmp_parser_reads_the_x64_world(converted_x64: dict[str, Any]) -> None:
    """kdmp-parser reads 64-bit dumps only; the 32-bit worlds are checked through the conversion above."""
    kdmp_parser = pytest.importorskip("kdmp_parser")
    w = converted_x64["world"]
    parser = kdmp_parser.KernelDumpParser(str(converted_x64["made"].path))  # kept alive while its pages are used
    dtb = w.space.dtb
    assert parser.directory_table_base == dtb
    cpu = w.cpus[w.crashing_cpu]
    assert read_virtual(parser, cpu.prcb_va, len(cpu.prcb), dtb) == cpu.prcb
    assert read_virtual(parser, cpu.thread_va, len(cpu.thread), dtb) == cpu.thread
    assert read_virtual(parser, w.process_va, len(w.process), dtb) == w.process
    assert read_virtual(parser, cpu.saved_sp, len(w.stack), dtb) == w.stack
    assert read_virtual(parser, w.kdbg_va, len(w.kdbg_stored), dtb) == w.kdbg_stored
    for m in w.modules:
        head = read_virtual(parser, m.base, 0x400, dtb)
        assert head[:2] == b"MZ"
        assert int.from_bytes(head[0xF8 + 8 : 0xF8 + 12], "little") == m.timestamp
