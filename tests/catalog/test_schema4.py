"""Migration 4 (driver lists across boots): a schema-3 catalog written by main at 430107e migrates in place;
its rows read back as recorded (their driver sets hold the bases); a result recorded after the migration
stores its list without bases, shared with every other boot of the machine, and reads back with its own.

Expectations: the real small dump's ground truth (../shared/groundtruth, drivers with their bases) and the
facts dicts made here; the catalog file is in tests/catalog/data (README says how it was written)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dbgauto.catalog.db import CATALOG_NAME, SCHEMA_VERSION, Catalog
from dbgauto.catalog.records import HeaderFacts, ResultRecord, SourceState
from dbgauto.engines.jobs import facts_from_dump

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def truth(triage_x64_path: Path) -> list[tuple[str, str, str]]:
    data = json.loads((triage_x64_path.parent.parent / "groundtruth" / "triage_x64.json").read_text())
    return [(t["name"], t["base"], t["size"]) for t in data["drivers"]["value"]]


def _drivers(facts: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(d["path"], d["base"], d["size"]) for d in facts["drivers"]]


def test_a_schema3_catalog_from_main_migrates_and_keeps_both_layouts(
    tmp_path: Path, triage_x64_path: Path, truth: list[tuple[str, str, str]]
) -> None:
    path = tmp_path / CATALOG_NAME
    shutil.copyfile(DATA / "schema3_main.sqlite", path)
    with Catalog.open(path) as cat:
        assert cat.user_version == SCHEMA_VERSION == 4
        assert cat.integrity_check() == "ok"
        old = {Path(r["path"]).name: r for r in cat.latest(status="ok")}
        assert sorted(old) == ["a.dmp", "b.dmp"]
        for row in old.values():  # recorded by main, its set holding the bases: read back as recorded
            assert _drivers(json.loads(row["facts"])) == truth
        assert cat.count("driver_sets") == 1

        facts = facts_from_dump(triage_x64_path).to_dict()
        later = dict(facts, drivers=[dict(d, base=hex(int(d["base"], 16) + (7 << 21))) for d in facts["drivers"]])
        run = cat.start_run({})
        recs = [
            ResultRecord(
                SourceState(f"/share/{name}/MEMORY.DMP", 1444532, 1, None),
                "ok",
                header=HeaderFacts(True, 4, 0x8664, 19041, 0x1000007E, (1, 2, 3, 4), "2021-02-21T01:38:22"),
                facts=f,
                host=name,
            )
            for name, f in (("PC3", facts), ("PC3-next-boot", later))
        ]
        cat.add_results(run, recs)
        new = {r["host"]: json.loads(r["facts"]) for r in cat.latest(status="ok") if r["path"].startswith("/share")}
        assert _drivers(new["PC3"]) == truth
        assert [b for _, b, _ in _drivers(new["PC3-next-boot"])] == [
            hex(int(b, 16) + (7 << 21)) for _, b, _ in truth
        ]
        # one more set for both new results: the list without its bases (the old set keeps its own layout)
        assert cat.count("driver_sets") == 2
    conn = sqlite3.connect(path)
    try:
        split = conn.execute("SELECT count(*) FROM result_facts WHERE driver_bases IS NOT NULL").fetchone()[0]
        whole = conn.execute("SELECT count(*) FROM result_facts WHERE driver_bases IS NULL").fetchone()[0]
    finally:
        conn.close()
    assert (split, whole) == (2, 2)


def test_the_real_dumps_facts_pack_and_unpack_to_what_json_writes(triage_x64_path: Path) -> None:
    """The JSON report is the encoder's text of the facts dict, and the catalog's packed form (the list without
    its bases, the bases apart) unpacks to the same document."""
    from dbgauto.catalog.summary import pack_facts, unpack_facts
    from dbgauto.report.render import json_text

    doc = facts_from_dump(triage_x64_path).to_dict()
    assert len(doc["drivers"]) > 100
    text = json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n"
    assert json_text(doc) == text
    packed = pack_facts(doc)
    assert packed.bases_z is not None
    assert unpack_facts(packed.facts_z, packed.drivers_z, packed.bases_z) == json.loads(text)


def test_a_driver_list_is_stored_under_its_canonical_digest_boot_after_boot(triage_x64_path: Path) -> None:
    """The base-less list's digest is SHA-256 of its canonical JSON (sorted keys, compact, ASCII), whatever
    the process remembered from earlier dumps: a list another boot moved gets the same digest and bytes, and a
    catalog written before keeps deduplicating against new rows."""
    import hashlib
    import zlib

    from dbgauto.catalog.summary import pack_facts

    doc = facts_from_dump(triage_x64_path).to_dict()
    stripped = [{k: v for k, v in d.items() if k != "base"} for d in doc["drivers"]]
    canonical = json.dumps(stripped, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    moved = json.loads(json.dumps(doc))  # another boot: every base 2 MiB further
    for d in moved["drivers"]:
        d["base"] = hex(int(d["base"], 16) + 0x200000)
    for facts in (doc, moved, doc):
        packed = pack_facts(facts)
        assert packed.drivers_digest == hashlib.sha256(canonical).hexdigest()
        assert zlib.decompress(packed.drivers_z or b"") == canonical
