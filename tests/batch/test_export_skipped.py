"""``dbgauto catalog export`` carries the files a run saw and did not process (status ``skipped``, the reason
in ``error_code``, its words in ``error_message``), in every format, so an export lists every file the index
shows; ``--no-skipped`` leaves them out. Real batch over a real small dump, a text file named ``*.dmp`` and a
copy of the dump older than ``--since``; expectations from how the files were made."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from batchkit import DAY, new_and_old_dumps, run_cli

NOT_A_DUMP = b"crash notes, not a dump\n"


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory: pytest.TempPathFactory, triage_x64_path: Path) -> tuple[Path, Path, str]:
    tmp = tmp_path_factory.mktemp("export_skipped")
    src, out = tmp / "src", tmp / "out"
    new_and_old_dumps(src, triage_x64_path, 30)
    notes = src / "PC2" / "Minidump" / "notes.dmp"
    notes.parent.mkdir(parents=True)
    notes.write_bytes(NOT_A_DUMP)
    since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * DAY))
    res = run_cli("batch", src, "--out", out, "--formats", "json", "--no-convert", "--since", since)
    assert res.returncode == 0, res.stderr
    return src, out, since


def _by_name(rows: list[dict[str, str]], key: str = "path") -> dict[str, dict[str, str]]:
    return {Path(r[key]).name: r for r in rows}


def test_json_export_lists_skipped_files_with_reason(batch_out: tuple[Path, Path, str]) -> None:
    src, out, since = batch_out
    res = run_cli("catalog", "export", out)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    made = [
        src / "PC1" / "Minidump" / "new.dmp",
        src / "PC1" / "Minidump" / "old.dmp",
        src / "PC2" / "Minidump" / "notes.dmp",
    ]
    assert [r["path"] for r in rows] == sorted(map(str, made))  # results and skipped files merged by path
    got = _by_name(rows)
    assert {k: r["status"] for k, r in got.items()} == {"new.dmp": "ok", "old.dmp": "skipped", "notes.dmp": "skipped"}
    old, notes = got["old.dmp"], got["notes.dmp"]
    assert old["error_code"] == "older_than_since"
    assert old["error_message"].startswith("modified ")
    assert f"before --since {since}" in old["error_message"]
    assert notes["error_code"] == "not_a_dump"
    assert notes["error_message"] == f"no kernel dump signature (starts with {NOT_A_DUMP[:8]!r})"
    assert (old["host"], notes["host"], got["new.dmp"]["host"]) == ("PC1", "PC2", "PC1")
    assert old["path"] == str(src / "PC1" / "Minidump" / "old.dmp")
    assert old["dump_size"] == (src / "PC1" / "Minidump" / "old.dmp").stat().st_size
    assert notes["dump_size"] == len(NOT_A_DUMP)
    assert old["run_id"] == notes["run_id"] == 1
    assert old["finished"]
    assert old["dump_id"] is None
    assert old["bugcheck_code"] is None
    assert got["new.dmp"]["dump_id"] is not None
    assert got["new.dmp"]["error_code"] is None

    # every file the index shows, with the same status and reason
    with open(out / "index.csv", newline="", encoding="utf-8-sig") as fh:
        index = _by_name(list(csv.DictReader(fh)), "Full Path")
    assert set(index) == set(got)
    for name, r in got.items():
        assert index[name]["Status"] == r["status"]
        if r["status"] == "skipped":
            assert index[name]["Reason"] == f"[{r['error_code']}] {r['error_message']}"


def test_csv_and_facts_exports_carry_them_and_no_skipped_leaves_them_out(
    batch_out: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, out, _ = batch_out
    res = run_cli("catalog", "export", out, "--format", "csv", "-o", tmp_path / "all.csv")
    assert res.returncode == 0, res.stderr
    assert "1 dump(s), 2 skipped file(s) written to" in res.stderr
    with open(tmp_path / "all.csv", newline="", encoding="utf-8") as fh:
        rows = _by_name(list(csv.DictReader(fh)))
    assert {k: (r["status"], r["error_code"], r["host"]) for k, r in rows.items()} == {
        "new.dmp": ("ok", "", "PC1"),
        "old.dmp": ("skipped", "older_than_since", "PC1"),
        "notes.dmp": ("skipped", "not_a_dump", "PC2"),
    }
    assert rows["notes.dmp"]["dump_size"] == str(len(NOT_A_DUMP))

    with_facts = _by_name(json.loads(run_cli("catalog", "export", out, "--facts").stdout))
    assert with_facts["notes.dmp"]["facts"] is None
    assert with_facts["notes.dmp"]["report_paths"] == {}
    assert with_facts["new.dmp"]["facts"]["bugcheck"] is not None
    assert (out / with_facts["new.dmp"]["report_paths"]["json"]).is_file()

    only_dumps = json.loads(run_cli("catalog", "export", out, "--no-skipped").stdout)
    assert [Path(r["path"]).name for r in only_dumps] == ["new.dmp"]
    res = run_cli("catalog", "export", out, "--format", "csv", "--no-skipped")
    assert [r["status"] for r in csv.DictReader(res.stdout.splitlines())] == ["ok"]
