"""Facts of large dumps (Complete, Kernel bitmap) built from the real small dump's bytes by dumpinflate.

The large dumps hold exactly what the real small dump captured, so their facts must equal the small dump's
(ground truth) for everything a small dump carries; only the DumpType and variety differ.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dbgauto_testkit import dumpinflate

from dbgauto.analysis.facts import CrashFacts
from dbgauto.engines.jobs import facts_from_dump


@pytest.fixture(scope="module")
def small_facts(triage_x64_path: Path) -> CrashFacts:
    return facts_from_dump(triage_x64_path)


@pytest.fixture(scope="module", params=[1, 6], ids=["complete-type1", "kernel-bitmap-type6"])
def large(request: pytest.FixtureRequest, triage_x64_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("large") / f"MEMORY{request.param}.DMP"
    return Path(dumpinflate.inflate(triage_x64_path, out, dump_type=request.param).path)


def test_large_dump_facts_equal_the_small_dump_facts(large: Path, small_facts: CrashFacts) -> None:
    facts = facts_from_dump(large)
    assert facts.dump_type in (1, 6)
    assert facts.dump_type != small_facts.dump_type
    assert facts.bugcheck == small_facts.bugcheck
    assert facts.culprit == small_facts.culprit
    assert facts.culprit is not None
    assert facts.culprit.name == "amdppm.sys"
    assert (facts.process_name, facts.pid, facts.tid) == ("System", 4, 264)
    assert facts.drivers == small_facts.drivers
    assert facts.unloaded_drivers == small_facts.unloaded_drivers
    assert facts.os_build == small_facts.os_build
    assert facts.crash_time == small_facts.crash_time
    assert facts.stack is not None
    assert facts.stack.kind == "unwound"  # frame 0 is the exception context (P4), as in the small dump
    f0 = facts.stack.frames[0]
    assert (f0.trust, f0.module, f0.offset) == ("context", "amdppm.sys", 0x334C)
    assert small_facts.stack is not None
    assert f0 == small_facts.stack.frames[0]
    # the inflated world's image headers are minimal (no sections), so later frames are scans filtered by them
    assert {f.trust for f in facts.stack.frames[1:]} <= {"scan"}
    assert facts.bucket_id == small_facts.bucket_id == "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M_amdppm"
    assert facts.experimental["collection"] == "small-dump parts gathered from the large dump"


def test_large_dump_without_a_kernel_keeps_header_facts_and_warns(tmp_path: Path, triage_x64_path: Path) -> None:
    full = Path(dumpinflate.inflate(triage_x64_path, tmp_path / "full.dmp", dump_type=1).path)
    data = bytearray(full.read_bytes())
    header_size = 0x2000  # a Complete dump's run list is inside the header; the memory follows it
    data[header_size:] = bytes(len(data) - header_size)  # the memory is gone: no KDBG, no module list
    broken = tmp_path / "wiped.dmp"
    broken.write_bytes(bytes(data))
    facts = facts_from_dump(broken)
    assert facts.bugcheck is not None
    assert facts.bugcheck.code == 0x1000007E
    assert facts.drivers == ()
    assert facts.culprit is None
    assert any("need a small-dump conversion" in w for w in facts.warnings)
