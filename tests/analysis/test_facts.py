"""CrashFacts: JSON round trip, "absent" semantics, the source identity, and the documented schema."""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from dbgauto.analysis.facts import (
    SCHEMA,
    BugcheckFact,
    CrashFacts,
    CulpritFact,
    DriverFact,
    FrameFact,
    ParameterFact,
    SourceFact,
    StackFact,
    UnloadedDriverFact,
    source_fact,
)

REPO = Path(__file__).resolve().parents[2]


def full_facts() -> CrashFacts:
    """Every field filled, including experimental ones and awkward text."""
    return CrashFacts(
        source=SourceFact("C:\\dumps\\MEMORY.DMP", 123, "ab" * 32, datetime(2024, 5, 6, 7, 8, 9, 123456, UTC)),
        variety="Small Memory Dump",
        dump_type=4,
        dump_type_meaning="Small memory dump (triage, minidump)",
        machine="x64",
        is_64bit=True,
        os_build=19041,
        os_major=15,
        os_name="Windows 10 Kernel Version 19041 MP (16 procs) Free x64",
        product_type=1,
        processors=16,
        crash_time=datetime(2021, 2, 21, 1, 38, 22, 987765, UTC),
        uptime_seconds=3.7470697,
        bugcheck=BugcheckFact(
            0x1000007E,
            "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M",
            True,
            [ParameterFact(1, 0xFFFFFFFFC0000005, "unhandled exception code"), ParameterFact(2, 0, None)],
            "summary",
        ),
        pc=0xFFFFF8048B58334C,
        culprit=CulpritFact("amdppm.sys", 0xFFFFF8048B580000, 0x334C, 0xC9C03000, "exception-address", 0x1),
        process_name="System",
        pid=4,
        tid=264,
        stack=StackFact("scan", [FrameFact(0, 0xFFFF850429891EE8, 0xFFFFF8048B58334C, "amdppm.sys", 0x334C)]),
        drivers=[DriverFact("amdppm.sys", r"\SystemRoot\x\amdppm.sys", 1, 2, 3, 4, False)],
        unloaded_drivers=[UnloadedDriverFact("dam.sys", 5, 6)],
        engine="native",
        engine_version="dbgauto 0.1.0",
        comment="bad \udc80 <script>",
        raw_output={"!analyze -v": "text"},
        warnings=["w"],
        experimental={"exception": {"code": "0x80000003"}, "x_already_prefixed": 1},
    )


def test_round_trip_through_json_text() -> None:
    facts = full_facts()
    text = json.dumps(facts.to_dict(), ensure_ascii=True)
    assert CrashFacts.from_dict(json.loads(text)) == facts


def test_lists_are_frozen_to_tuples() -> None:
    facts = full_facts()
    assert isinstance(facts.drivers, tuple)
    assert isinstance(facts.bugcheck.parameters, tuple)  # type: ignore[union-attr]
    assert isinstance(facts.stack.frames, tuple)  # type: ignore[union-attr]


def test_absent_fields_are_left_out() -> None:
    assert CrashFacts().to_dict() == {"schema": SCHEMA}
    assert CrashFacts.from_dict({}) == CrashFacts()
    d = CrashFacts(bugcheck=BugcheckFact(0xD1)).to_dict()
    assert d == {"schema": SCHEMA, "bugcheck": {"code": "0xd1", "variant_m": False}}


def test_addresses_are_hex_strings_and_experimental_fields_are_prefixed() -> None:
    d = full_facts().to_dict()
    assert d["pc"] == "0xfffff8048b58334c"
    assert d["bugcheck"]["parameters"][0] == {
        "index": 1,
        "value": "0xffffffffc0000005",
        "meaning": "unhandled exception code",
    }
    assert d["crash_time"] == "2021-02-21T01:38:22.987765Z"
    assert d["x_exception"] == {"code": "0x80000003"}
    assert d["x_already_prefixed"] == 1
    assert not any(k.startswith("x_x_") for k in d)


def test_from_dict_accepts_hand_written_numbers() -> None:
    facts = CrashFacts.from_dict(
        {"pc": 16, "bugcheck": {"code": "209"}, "os_build": "19041", "drivers": [{"name": "a", "base": "0x10"}]}
    )
    assert facts.pc == 16
    assert facts.bugcheck is not None
    assert facts.bugcheck.code == 209
    assert facts.os_build == 19041
    assert facts.drivers[0].base == 0x10


def test_source_fact_hash_is_head_tail_plus_size(tmp_path: Path) -> None:
    """SHA-256 over the first 64 KiB, the last 64 KiB of the rest, then the size (docs/report-schema.md)."""
    head, middle, tail = os.urandom(1 << 16), os.urandom(1 << 20), os.urandom(1 << 16)
    a, b, c = tmp_path / "a.dmp", tmp_path / "b.dmp", tmp_path / "c.dmp"
    a.write_bytes(head + middle + tail)
    b.write_bytes(head + middle + tail[:-1] + bytes([tail[-1] ^ 1]))  # a different last byte
    c.write_bytes(head + bytes(len(middle)) + tail)  # the middle is not hashed
    sa, sb, sc = source_fact(a), source_fact(b), source_fact(c)
    size = len(head) + len(middle) + len(tail)
    expected = hashlib.sha256(head + tail + size.to_bytes(8, "little")).hexdigest()
    assert sa.sha256_head_tail_plus_size == expected
    assert sb.sha256_head_tail_plus_size != expected
    assert sc.sha256_head_tail_plus_size == expected
    assert sa.size == size
    short = tmp_path / "short.dmp"  # shorter than head + tail: all of it, once
    short.write_bytes(middle[: 100_000])
    want = hashlib.sha256(middle[:100_000] + (100_000).to_bytes(8, "little")).hexdigest()
    assert source_fact(short).sha256_head_tail_plus_size == want
    assert sa.mtime is not None
    assert sa.mtime.tzinfo is UTC
    assert abs(sa.mtime.timestamp() - a.stat().st_mtime) < 1e-5


def test_every_emitted_field_is_documented() -> None:
    doc = (REPO / "docs" / "report-schema.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_0-9]+)`", doc))
    d = full_facts().to_dict()
    keys = set(d)
    for nested in ("source", "bugcheck", "culprit", "stack"):
        keys |= set(d[nested])
    keys |= set(d["bugcheck"]["parameters"][0]) | set(d["stack"]["frames"][0]) | set(d["drivers"][0])
    keys |= set(d["unloaded_drivers"][0])
    undocumented = {k for k in keys if k not in documented and not k.startswith("x_")}
    assert not undocumented
    assert "All fields may be absent" in doc


def test_facts_pickle_for_worker_processes() -> None:
    import pickle

    facts = full_facts()
    assert pickle.loads(pickle.dumps(facts)) == facts


def test_negative_numbers_round_trip() -> None:
    """A negative value (a hand-written or corrupt one) keeps its sign: ``-0x5``, never ``0x-5``."""
    facts = CrashFacts(pc=-5, culprit=CulpritFact("a.sys", offset=-0x10))
    d = facts.to_dict()
    assert d["pc"] == "-0x5"
    assert d["culprit"]["offset"] == "-0x10"
    assert CrashFacts.from_dict(d) == facts
