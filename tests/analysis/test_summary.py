"""The real small dump's facts JSON and DumpSummary against what rizin and an independent cross-check reader
read from the same file (../shared/groundtruth/triage_x64.json), and the one header model behind both."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dbgauto.analysis.facts import CrashFacts
from dbgauto.analysis.summary import DumpSummary, header_facts, summarize
from dbgauto.engines.jobs import facts_from_dump
from dbgauto.kdump.reader import KernelDump
from dbgauto.util.codec import from_json, to_json

REPO = Path(__file__).resolve().parents[2]


def _int(v: str | int) -> int:
    return int(v, 16) if isinstance(v, str) else v


def test_facts_json_of_the_real_small_dump_matches_ground_truth(
    triage_x64_path: Path, groundtruth_x64: dict[str, Any]
) -> None:
    gt = groundtruth_x64
    facts = facts_from_dump(triage_x64_path)
    d = json.loads(json.dumps(facts.to_dict(), ensure_ascii=True))
    assert d["schema"] == "dbgauto.crashfacts/1"
    assert d["dump_type"] == gt["dump_type"]
    assert d["os_build"] == gt["minor_version_build"]
    assert d["os_major"] == _int(gt["major_version"])
    assert d["processors"] == _int(gt["number_processors"])
    assert _int(gt["machine"]) == 0x8664
    assert d["machine"] == "x64"
    assert d["is_64bit"] is True
    assert d["crash_time"] == gt["system_time"]["utc"]  # same text: ISO UTC, microseconds, "Z"
    assert d["uptime_seconds"] == gt["system_uptime"]["seconds"]
    assert d["bugcheck"]["code"] == gt["bugcheck_code"]  # lower-case "0x…" strings, as the peers print them
    assert [p["value"] for p in d["bugcheck"]["parameters"]] == gt["bugcheck_parameters"]
    assert [p["index"] for p in d["bugcheck"]["parameters"]] == [1, 2, 3, 4]
    assert (d["process_name"], d["pid"]) == (gt["process"]["image_file_name"], gt["process"]["pid"])
    by_base = {_int(x["base"]): x for x in gt["drivers"]}
    assert len(d["drivers"]) == len(gt["drivers"])
    for drv in d["drivers"]:
        assert re.fullmatch(r"0x[0-9a-f]+", drv["base"])
        peer = by_base[int(drv["base"], 16)]
        assert drv["path"] == peer["name"]
        assert (drv["size"], drv["timestamp"], drv["checksum"]) == (peer["size"], peer["timestamp"], peer["checksum"])
    assert [(u["name"], u["start"], u["end"]) for u in d["unloaded_drivers"]] == [
        (u["name"], u["start"], u["end"]) for u in gt["unloaded_drivers"]
    ]
    assert d["x_exception"]["code"] == gt["exception_record"]["ExceptionCode"].lower()
    assert CrashFacts.from_dict(d) == facts


def test_summary_of_the_real_small_dump_matches_ground_truth_and_round_trips(
    triage_x64_path: Path, groundtruth_x64: dict[str, Any]
) -> None:
    gt = groundtruth_x64
    with KernelDump.open(triage_x64_path) as dump:
        s = summarize(dump)
    assert (s.signature, s.dump_type, s.build) == (gt["signature"], gt["dump_type"], gt["minor_version_build"])
    assert s.bugcheck_code == _int(gt["bugcheck_code"])
    assert s.bugcheck_parameters == tuple(_int(p) for p in gt["bugcheck_parameters"])
    assert s.system_time is not None
    assert s.system_time.raw == _int(gt["system_time"]["filetime"])
    assert s.system_uptime is not None
    assert s.system_uptime.raw_100ns == _int(gt["system_uptime"]["raw_100ns"])
    assert s.system_uptime.text == "0 days 00:00:03.747"  # 0x23bc1e9 x 100 ns = 3.7470697 s, cut to the ms
    assert s.exception is not None
    assert s.exception.address == _int(gt["exception_record"]["ExceptionAddress"])
    d = json.loads(json.dumps(to_json(s, omit_absent=False)))
    assert d["schema"] == "dbgauto.dumpsummary/1"
    assert d["system_time"]["utc"] == gt["system_time"]["utc"]
    assert from_json(DumpSummary, d) == s


def test_header_facts_are_what_the_facts_say(triage_x64_path: Path) -> None:
    """One header model: the facts the collector writes agree with header_facts(summarize(dump))."""
    facts = facts_from_dump(triage_x64_path)
    with KernelDump.open(triage_x64_path) as dump:
        mine = header_facts(summarize(dump))
    experimental = mine.pop("experimental")
    for key, value in mine.items():
        assert getattr(facts, key) == value, key
    assert {k: facts.experimental[k] for k in experimental} == experimental


def test_every_info_json_key_is_documented() -> None:
    doc = (REPO / "docs" / "report-schema.md").read_text(encoding="utf-8")
    section = doc[doc.index("# dbgauto info JSON schema") :]
    documented = set(re.findall(r"`([a-z_0-9]+)`", section))
    import dataclasses

    from dbgauto.analysis import summary as model

    keys = {
        f.name
        for cls in (model.DumpSummary, model.VarietySummary, model.SystemTime, model.Uptime, model.BitmapSummary,
                    model.PhysicalMemorySummary)
        for f in dataclasses.fields(cls)
    }  # fmt: skip
    assert not keys - documented
