"""Facts from the real Windows-written small dump equal the ground truth (rizin + cross-check reader)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dbgauto.analysis.facts import CrashFacts
from dbgauto.engines.jobs import facts_from_dump
from dbgauto.errors import DumpFormatError, DumpNotFoundError


@pytest.fixture(scope="module")
def facts(triage_x64_path: Path) -> CrashFacts:
    return facts_from_dump(triage_x64_path)


def _h(text: str) -> int:
    return int(text, 16)


def test_header_facts_equal_ground_truth(facts: CrashFacts, groundtruth_x64: dict[str, Any]) -> None:
    gt = groundtruth_x64
    assert facts.dump_type == gt["dump_type"] == 4
    assert facts.variety == "Small Memory Dump"
    assert facts.machine == "x64"
    assert _h(gt["machine"]) == 0x8664
    assert facts.is_64bit is True
    assert facts.os_build == gt["minor_version_build"]
    assert facts.os_major == _h(gt["major_version"])
    assert facts.product_type == _h(gt["ProductType"])
    assert facts.processors == _h(gt["number_processors"])
    assert facts.comment == gt["comment"]
    want_time = datetime.fromisoformat(gt["system_time"]["utc"].replace("Z", "+00:00"))
    assert facts.crash_time == want_time
    assert facts.uptime_seconds == pytest.approx(gt["system_uptime"]["seconds"], abs=1e-7)
    assert facts.uptime_seconds == _h(gt["system_uptime"]["raw_100ns"]) / 1e7
    assert facts.source is not None
    assert facts.source.size == gt["file_size"]
    assert facts.engine == "native"


def test_bugcheck_equals_ground_truth(facts: CrashFacts, groundtruth_x64: dict[str, Any]) -> None:
    bc = facts.bugcheck
    assert bc is not None
    assert bc.code == _h(groundtruth_x64["bugcheck_code"])
    assert [p.value for p in bc.parameters] == [_h(p) for p in groundtruth_x64["bugcheck_parameters"]]
    assert bc.name == "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M"  # rizin's name for it too (ground-truth note)
    assert bc.variant_m
    assert bc.parameters[1].meaning == "address where exception occurred"
    assert facts.pc == _h(groundtruth_x64["context_main"]["rip"])


def test_process_thread_and_driver_lists_equal_ground_truth(facts: CrashFacts, groundtruth_x64: dict[str, Any]) -> None:
    gt = groundtruth_x64
    assert (facts.process_name, facts.pid, facts.tid) == (
        gt["process"]["image_file_name"],
        gt["process"]["pid"],
        gt["thread"]["tid"],
    )
    want = [(d["name"], _h(d["base"]), _h(d["size"]), _h(d["timestamp"]), _h(d["checksum"])) for d in gt["drivers"]]
    got = [(d.path, d.base, d.size, d.timestamp, d.checksum) for d in facts.drivers]
    assert got == want
    assert [d.name for d in facts.drivers][:3] == ["ntoskrnl.exe", "hal.dll", "kd.dll"]
    want_unloaded = [(u["name"], _h(u["start"]), _h(u["end"])) for u in gt["unloaded_drivers"]]
    assert [(u.name, u.start, u.end) for u in facts.unloaded_drivers] == want_unloaded


def test_culprit_is_amdppm_holding_rip_and_p2(facts: CrashFacts, groundtruth_x64: dict[str, Any]) -> None:
    rip = _h(groundtruth_x64["context_main"]["rip"])
    p2 = _h(groundtruth_x64["bugcheck_parameters"][1])
    holders = [d for d in groundtruth_x64["drivers"] if _h(d["base"]) <= rip < _h(d["base"]) + _h(d["size"])]
    assert [d["name"] for d in holders] == [r"\SystemRoot\System32\drivers\amdppm.sys"]
    base = _h(holders[0]["base"])
    assert base <= p2 < base + _h(holders[0]["size"])
    c = facts.culprit
    assert c is not None
    assert (c.name, c.base, c.offset, c.timestamp) == ("amdppm.sys", base, p2 - base, _h(holders[0]["timestamp"]))
    assert c.rule == "exception-address"
    assert c.evidence == "the exception address (parameter 2) lies in amdppm.sys"
    assert not c.is_core
    assert facts.culprit_driver is not None
    assert facts.culprit_driver.name == "amdppm.sys"


def test_stack_unwinds_from_the_exception_context(facts: CrashFacts, groundtruth_x64: dict[str, Any]) -> None:
    """Frame 0 is the CONTEXT record bug check P4 points at (.cxr); a small dump holds no images, so the rest
    are filtered scan frames inside the stack copy, never a bug check parameter."""
    assert facts.stack is not None
    assert facts.stack.kind == "unwound"
    assert facts.experimental["stack_context"] == "exception context (P4)"
    rip = _h(groundtruth_x64["context_main"]["rip"])
    rsp = _h(groundtruth_x64["context_main"]["rsp"])
    f0 = facts.stack.frames[0]
    assert (f0.trust, f0.value, f0.address, f0.module, f0.offset) == ("context", rip, rsp, "amdppm.sys", 0x334C)
    assert {f.trust for f in facts.stack.frames[1:]} == {"scan"}
    top = _h(groundtruth_x64["triage_header"]["TopOfStack"])
    size = _h(groundtruth_x64["triage_header"]["SizeOfCallStack"])
    assert all(top <= f.address <= top + size for f in facts.stack.frames if f.address is not None)
    assert [f.address for f in facts.stack.frames] == sorted(f.address for f in facts.stack.frames if f.address)
    params = {_h(p) for p in groundtruth_x64["bugcheck_parameters"]}
    assert not params & {f.value for f in facts.stack.frames[1:]}
    assert facts.unwound_frames == (f0,)  # scan rows are folded away by default


def test_identity_bucket_and_cpu(facts: CrashFacts, groundtruth_x64: dict[str, Any]) -> None:
    assert (facts.process_name, facts.pid, facts.tid) == ("System", 4, 264)
    assert facts.experimental["identity_method"] == "search+offset-table"
    assert facts.bucket_id == "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M_amdppm"
    assert facts.failure_class == "windows-component"
    assert facts.current_irql == 0  # no IRQL parameter: the KPRCB's saved IRQL (tests/analysis/test_irql.py)
    assert facts.faulting_cpu is not None


def test_real_facts_round_trip(facts: CrashFacts) -> None:
    assert CrashFacts.from_dict(facts.to_dict()) == facts


def test_missing_and_bad_files_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(DumpNotFoundError):
        facts_from_dump(tmp_path / "absent.dmp")
    bad = tmp_path / "bad.dmp"
    bad.write_bytes(b"NOTADUMP" + bytes(0x3000))
    with pytest.raises(DumpFormatError) as err:
        facts_from_dump(bad)
    assert str(bad) in str(err.value)


def test_exception_record_is_kept_as_experimental(facts: CrashFacts, groundtruth_x64: dict[str, Any]) -> None:
    exc = groundtruth_x64["exception_record"]
    assert facts.experimental["exception"] == {
        "code": f"{_h(exc['ExceptionCode']):#x}",
        "address": f"{_h(exc['ExceptionAddress']):#x}",
        "flags": _h(exc["ExceptionFlags"]),
    }
    assert facts.to_dict()["x_exception"]["code"] == "0x80000003"
