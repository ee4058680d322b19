"""The main job end to end through the real CLI: convert large dumps, report on every good dump, index,
incremental reruns, and --delete-source-after-verify. Facts are checked against the real dump's ground truth."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from batchkit import DumpTree, Expected, inflated_dumps, kworld_dump, run_cli

from dbgauto.batch.tasks import compare_facts, content_hash
from dbgauto.catalog.db import CATALOG_NAME, Catalog
from dbgauto.report.fleet import embedded_rows


def test_main_job_first_second_and_incremental(
    full_tree: DumpTree, tmp_path: Path, groundtruth_x64: dict[str, Any], triage_x64_path: Path
) -> None:
    out = tmp_path / "out"
    before = full_tree.hashes()
    first = run_cli("batch", full_tree.root, "--out", out, "--formats", "html,json,md")
    assert first.returncode == 1, first.stderr
    assert f"failed ({len(full_tree.broken)}):" in first.stdout
    large = [p for p in full_tree.good if "large" in p.parts]
    assert {e.is_64bit for e in full_tree.expected.values()} == {False}  # 32-bit kernel worlds converted too
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        latest = {r["path"]: r for r in cat.latest()}
    assert {p for p, r in latest.items() if r["status"] == "ok"} == {str(p.resolve()) for p in full_tree.good}
    smalls = set()
    for src in full_tree.good:
        row = latest[str(src.resolve())]
        exp = full_tree.expected.get(src)  # a synthetic kernel world, else the real dump's ground truth
        code = f"{exp.bugcheck:#x}" if exp else groundtruth_x64["bugcheck_code"]
        if src in large:
            assert row["small_path"] is not None, src
            smalls.add(row["small_path"])
            small = out / row["small_path"]
            from dbgauto.kdump.reader import KernelDump

            with KernelDump.open(small) as dump:
                assert int(dump.dump_type) == 4
                assert dump.header.bugcheck_code == int(code, 16)
                if exp:
                    assert dump.is_64bit == exp.is_64bit
                    assert len(dump.triage.drivers) == exp.drivers
                else:
                    params = [f"{p:#x}" for p in dump.header.bugcheck_parameters]
                    assert params == groundtruth_x64["bugcheck_parameters"]
        else:  # already a small dump: reported on, not converted
            assert row["small_path"] is None
            assert "already a small memory dump" in row["warnings"]
        facts = json.loads(row["facts"])
        assert facts["bugcheck"]["code"] == code
        assert len(facts["drivers"]) == (exp.drivers if exp else len(groundtruth_x64["drivers"]))
        if exp:
            assert facts["culprit"]["name"] == exp.culprit
        reports = json.loads(row["report_paths"])
        assert set(reports) == {"html", "json", "md"}
        assert json.loads((out / reports["json"]).read_text())["bugcheck"]["code"] == code
    assert len(smalls) == len(large)  # hostA/MEMORY.DMP and hostB/MEMORY.DMP did not collide
    links = {r["report_dir"] + r["report_file"] for r in embedded_rows((out / "index.html").read_text())}
    for row in latest.values():
        if row["status"] == "ok":
            assert json.loads(row["report_paths"])["html"] in links  # linked from the index
    with open(out / "index.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    # every dump appears, failed ones with their reason (filterable by the Status column)
    assert sorted(r["Full Path"] for r in rows if r["Status"] == "ok") == sorted(
        str(p.resolve()) for p in full_tree.good
    )
    failed_rows = {r["Full Path"]: r for r in rows if r["Status"].startswith("failed")}
    assert set(failed_rows) == {str(p.resolve()) for p in full_tree.broken}
    assert all(r["Reason"].startswith("[") for r in failed_rows.values())

    second = run_cli("batch", full_tree.root, "--out", out)
    assert second.returncode == 0
    assert "nothing new" in second.stdout
    index_mtime = (out / "index.html").stat().st_mtime_ns

    added = inflated_dumps(full_tree.root / "later", triage_x64_path, count=1)
    third = run_cli("batch", full_tree.root, "--out", out, "--json")
    summary = json.loads(third.stdout)
    assert third.returncode == 0
    assert summary["succeeded"] == 1
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        assert [r["path"] for r in cat.results_for_run(summary["run_id"])] == [str(added[0].resolve())]
        assert len(cat.latest(status="ok")) == len(full_tree.good) + 1
    assert (out / "index.html").stat().st_mtime_ns != index_mtime  # the index now covers the new dump too
    assert {p: h for p, h in full_tree.hashes().items() if p in before} == before


def _check_synthetic(out: Path, src: Path, exp: Expected, row: Any) -> None:
    assert row["status"] == "ok", (src, row["error_message"])
    assert row["small_path"] is not None
    facts = json.loads(row["facts"])
    assert (facts["bugcheck"]["code"], facts["is_64bit"], len(facts["drivers"])) == (
        f"{exp.bugcheck:#x}",
        exp.is_64bit,
        exp.drivers,
    )
    assert facts["culprit"]["name"] == exp.culprit
    report = json.loads((out / json.loads(row["report_paths"])["json"]).read_text())
    assert report["culprit"]["name"] == exp.culprit
    from dbgauto.kdump.reader import KernelDump

    with KernelDump.open(out / row["small_path"]) as dump:
        assert int(dump.dump_type) == 4
        assert dump.is_64bit == exp.is_64bit
        assert [d.name.rsplit("\\", 1)[-1] for d in dump.triage.drivers][:2] == ["ntoskrnl.exe", "hal.dll"]


def test_synthetic_varieties_convert_and_report(synth_tree: DumpTree, tmp_path: Path) -> None:
    """Issue 7's check without the shared material: 32- and 64-bit kernel worlds (Complete, Active, Kernel bitmap)
    plus broken dumps: the first run converts and reports every good one and lists the broken ones, the second
    does nothing and says so, and a new dump is the only one processed."""
    out = tmp_path / "out"
    before = synth_tree.hashes()
    first = run_cli("batch", synth_tree.root, "--out", out, "--formats", "html,json")
    assert first.returncode == 1, first.stderr
    assert f"failed ({len(synth_tree.broken)}):" in first.stdout
    for broken in synth_tree.broken:
        assert str(broken.resolve()) in first.stdout
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        latest = {r["path"]: r for r in cat.latest()}
    assert {p for p, r in latest.items() if r["status"] == "failed"} == {str(p.resolve()) for p in synth_tree.broken}
    assert {e.is_64bit for e in synth_tree.expected.values()} == {True, False}
    for src, exp in synth_tree.expected.items():
        _check_synthetic(out, src, exp, latest[str(src.resolve())])
    assert len(list((out / "small").glob("*.mini.dmp"))) == len(synth_tree.good)

    second = run_cli("batch", synth_tree.root, "--out", out)
    assert second.returncode == 0
    assert "nothing new" in second.stdout

    new, exp = kworld_dump(synth_tree.root / "c" / "late32.dmp", "x86pae", 6, 0x50, "acmefilt.sys", seed=42)
    third = run_cli("batch", synth_tree.root, "--out", out, "--formats", "html,json", "--json")
    assert third.returncode == 0, third.stderr
    summary = json.loads(third.stdout)
    assert summary["succeeded"] == 1
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        rows = cat.results_for_run(summary["run_id"])
        assert [r["path"] for r in rows] == [str(new.resolve())]
        _check_synthetic(out, new, exp, rows[0])
    assert {p: h for p, h in synth_tree.hashes().items() if p in before} == before


def test_delete_source_after_verify(full_tree: DumpTree, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = run_cli("batch", full_tree.root, "--out", out, "--delete-source-after-verify")
    assert res.returncode == 1  # the broken ones
    for src in full_tree.good:
        if "large" in src.parts:
            assert not src.exists()
            assert f"deleted source (verified): {src.resolve()}" in res.stdout
        else:
            assert src.exists()
            assert f"kept source {src.resolve()}: no small dump was written" in res.stdout
    for src in full_tree.broken:
        assert src.exists()
        assert f"kept source {src.resolve()}: processing failed" in res.stdout
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        rows = {r["path"]: r for r in cat.latest()}
        for src in full_tree.good:
            if "large" in src.parts:
                row = rows[str(src.resolve())]
                assert (row["verified"], row["source_deleted"] is not None) == (1, True)
                assert (out / row["small_path"]).is_file()
    assert (
        run_cli("batch", "--out", out, "--no-convert", "--delete-source-after-verify", full_tree.root).returncode == 2
    )


def test_compare_facts_catches_a_different_small_dump(triage_x64_path: Path) -> None:
    from dbgauto.engines.jobs import facts_from_dump

    facts = facts_from_dump(triage_x64_path).to_dict()
    same, why = compare_facts(facts, json.loads(json.dumps(facts)))
    assert same, why
    other = json.loads(json.dumps(facts))
    other["drivers"][3]["base"] = "0x1000"
    other["bugcheck"]["parameters"][1]["value"] = "0x0"
    same, why = compare_facts(facts, other)
    assert not same
    assert why == "bugcheck differs; drivers differ"
    missing = {k: v for k, v in facts.items() if k != "drivers"}
    assert compare_facts(facts, missing) == (False, "drivers missing from the small dump")


def test_catalog_hash_is_the_reports_identity_hash(triage_x64_path: Path) -> None:
    """One identity hash: the catalog's ``sha256-ht:`` value is the facts' ``sha256_head_tail_plus_size``; a hash
    recorded in the older ``sha256-1m:`` scheme is recomputed that way for the comparison."""
    from dbgauto.analysis.facts import source_fact

    data = triage_x64_path.read_bytes()
    n = len(data)
    want = hashlib.sha256(data[: 1 << 16] + data[n - (1 << 16) :] + n.to_bytes(8, "little")).hexdigest()
    assert content_hash(triage_x64_path) == f"sha256-ht:{want}"
    assert source_fact(triage_x64_path).sha256_head_tail_plus_size == want
    old = hashlib.sha256(data[: 1 << 20] + n.to_bytes(8, "little")).hexdigest()
    assert content_hash(triage_x64_path, like="sha256-1m:0") == f"sha256-1m:{old}"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli("batch", tmp_path / "nope", "--out", tmp_path / "o").returncode == 2
    assert run_cli("batch", tmp_path, "--out", tmp_path / "o", "--formats", "pdf").returncode == 2
    assert run_cli("batch", tmp_path, "--out", tmp_path / "o", "--scheduler", "localhost").returncode == 2
    assert run_cli("batch", tmp_path).returncode == 2


def test_copy_of_outputs_is_self_contained(full_tree: DumpTree, tmp_path: Path) -> None:
    """Output paths in the catalog are relative: the folder can be moved and `catalog` still finds everything."""
    out = tmp_path / "out"
    run_cli("batch", full_tree.root, "--out", out, "--formats", "json")
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    res = run_cli("catalog", "export", moved, "--facts")
    rows = json.loads(res.stdout)
    for row in rows:
        for rel in row["report_paths"].values():
            assert (moved / rel).is_file()
    csv_out = run_cli("catalog", "export", moved, "--format", "csv", "-o", tmp_path / "c.csv")
    assert csv_out.returncode == 0
    with open(tmp_path / "c.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(full_tree.all_dumps())
    listing = run_cli("catalog", "list", moved, "--failed")
    assert len(listing.stdout.splitlines()) == len(full_tree.broken)
    show = json.loads(run_cli("catalog", "show", moved, "cut_header.dmp").stdout)
    assert show["results"][0]["error_code"] == "truncated"
