"""The JSON report and the catalog's packed facts reuse a driver list's encoding (one per distinct list per
process): the text must be exactly what the standard library's encoder writes for the whole document.

Expectations come from ``json.dumps`` over the whole dict (the standard library, not our splice)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dbgauto.analysis.facts import CrashFacts, DriverFact, drivers_json
from dbgauto.catalog.summary import pack_facts, unpack_facts
from dbgauto.report.render import json_text
from dbgauto.util.codec import to_json

SHARED = Path(os.environ.get("DBGAUTO_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
DUMP = SHARED / "dumps" / "triage_x64.dmp"


def _stdlib(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n"


DRIVERS = (
    DriverFact("nt", "\\SystemRoot\\system32\\ntoskrnl.exe", 0xFFFFF80000000000, 0x800000, 0x5E0F4A3B, 1, False),
    DriverFact("evil\u202e.sys", None, 0xFFFFF88001000000, 0x1000, None, None, True),
    DriverFact("\ud800lone", "C:\\\u00e9\\x.sys", 0x10, 0x20, 0, 0, True),
)


@pytest.mark.parametrize(
    "make",
    [
        lambda drivers: {"drivers": drivers},  # the only key
        lambda drivers: {"drivers": drivers, "z": [1, {"a": None}]},  # first
        lambda drivers: {"a": "x\u0000y", "drivers": drivers},  # last
        lambda drivers: {"a": 1, "drivers": drivers, "b": "\u202e", "c": {"d": [True, 1.5]}},  # between
    ],
)
def test_spliced_json_is_the_encoders_text(make: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
    enc = drivers_json(DRIVERS)
    doc = make([to_json(d) for d in DRIVERS])
    assert json_text(doc, drivers=enc.compact) == _stdlib(doc)


def test_a_document_without_drivers_ignores_the_encoding() -> None:
    doc = {"a": 1}
    assert json_text(doc, drivers=drivers_json(DRIVERS).compact) == _stdlib(doc)


@pytest.mark.skipif(not DUMP.is_file(), reason="../shared dump absent")
def test_the_real_dumps_report_is_unchanged_by_the_shared_encoding_and_its_packed_facts_unpack() -> None:
    from dbgauto.engines.jobs import facts_from_dump

    facts: CrashFacts = facts_from_dump(DUMP, engine="native", symbol_path=str(SHARED / "symbols"))
    doc = facts.to_dict()
    assert len(doc["drivers"]) > 100
    enc = drivers_json(facts.drivers)
    assert json_text(doc, drivers=enc.compact) == _stdlib(doc)
    packed = pack_facts(doc)
    assert unpack_facts(packed.facts_z, packed.drivers_z, packed.bases_z) == json.loads(_stdlib(doc))
