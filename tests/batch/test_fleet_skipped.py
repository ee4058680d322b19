"""Failures visible: every file a run saw is in index.html and index.csv with a status (ok / failed with its
reason / skipped with its reason), through the real CLI on real files and a real catalog. The rule
(docs/scheduling.md): one skipped row per path, updated by the runs that skip it again, replaced by a result
when the path is processed; files not named ``*.dmp`` that are not dumps are not listed."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sqlite3
import struct
import time
from pathlib import Path

from batchkit import DAY, new_and_old_dumps, run_cli

from dbgauto.report.fleet import decode_rows


def _index(out: Path) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, object]]]:
    with open(out / "index.csv", newline="", encoding="utf-8-sig") as fh:
        csv_rows = {Path(r["Full Path"]).name: r for r in csv.DictReader(fh)}
    html = (out / "index.html").read_text(encoding="utf-8")
    data = re.search(r'<script type="application/json" id="rows">(.*?)</script>', html, re.S)
    assert data is not None
    page_rows = {str(r["file"]): r for r in decode_rows(json.loads(data.group(1)))}
    return csv_rows, page_rows


def _user_minidump(path: Path) -> None:
    """A user-mode minidump's header (MINIDUMP_HEADER: 'MDMP', version 0xA793, streams, directory RVA, ...)."""
    path.write_bytes(struct.pack("<4sIIIIIQ", b"MDMP", 0xA793, 3, 0x20, 0, 0x65000000, 0) + bytes(64))


def test_skipped_files_are_listed_once_with_their_reason(tmp_path: Path, triage_x64_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    new_and_old_dumps(src, triage_x64_path, 30)
    other = src / "PC2" / "Minidump"
    other.mkdir(parents=True)
    _user_minidump(other / "app.dmp")
    (other / "MEMORY.DMP").write_bytes(b"")  # a dump the crash never finished writing
    (other / "notes.txt").write_text("not a dump, not named like one: not listed\n")
    old_note = other / "old-notes.txt"
    old_note.write_text("old, not named like a dump: not listed either\n")
    past = time.time() - 30 * DAY
    os.utime(old_note, (past, past))
    since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * DAY))

    res = run_cli("batch", src, "--out", out, "--no-convert", "--since", since, "--json")
    assert res.returncode == 0, res.stderr  # skipped files are not failures
    summary = json.loads(res.stdout)
    assert summary["skipped_files"] == {"not_a_dump": 2, "older_than_since": 1}
    csv_rows, page_rows = _index(out)
    assert set(csv_rows) == set(page_rows) == {"new.dmp", "old.dmp", "app.dmp", "MEMORY.DMP"}
    assert {k: r["Status"] for k, r in csv_rows.items()} == {
        "new.dmp": "ok",
        "old.dmp": "skipped",
        "app.dmp": "skipped",
        "MEMORY.DMP": "skipped",
    }
    assert csv_rows["old.dmp"]["Reason"].startswith("[older_than_since] modified ")
    assert f"before --since {since}" in csv_rows["old.dmp"]["Reason"]
    assert csv_rows["app.dmp"]["Reason"] == "[not_a_dump] a user-mode minidump (MDMP), not a kernel dump"
    assert csv_rows["MEMORY.DMP"]["Reason"].startswith("[not_a_dump] empty file")
    assert {k: r["Host"] for k, r in csv_rows.items()} == {
        "new.dmp": "PC1",
        "old.dmp": "PC1",
        "app.dmp": "PC2",
        "MEMORY.DMP": "PC2",
    }
    assert page_rows["old.dmp"]["status"] == "skipped"
    assert page_rows["old.dmp"]["reason"] == csv_rows["old.dmp"]["Reason"]
    assert page_rows["new.dmp"]["report_file"].endswith(".html")
    html = (out / "index.html").read_text(encoding="utf-8")
    assert '<option value="skipped">' in html
    assert "(0 failed, 3 skipped)" in html
    index_mtime = (out / "index.html").stat().st_mtime_ns

    # the next night, nothing changed: still one row per path, seen again, the index left as it was
    res = run_cli("batch", src, "--out", out, "--no-convert", "--since", since)
    assert res.returncode == 0, res.stderr
    assert "seen, not processed: 3 file(s) (2 not_a_dump, 1 older_than_since" in res.stdout
    conn = sqlite3.connect(out / "dbgauto.sqlite")
    try:
        skips = conn.execute("SELECT path, run_id, first_seen < last_seen FROM skips ORDER BY path").fetchall()
    finally:
        conn.close()
    assert sorted((Path(p).name, run, later) for p, run, later in skips) == [
        ("MEMORY.DMP", 2, 1),
        ("app.dmp", 2, 1),
        ("old.dmp", 2, 1),
    ]
    assert (out / "index.html").stat().st_mtime_ns == index_mtime
    listed = run_cli("catalog", "list", out, "--skipped")
    assert listed.returncode == 0, listed.stderr
    assert "3 skipped file(s)" in listed.stderr
    assert sorted(ln.split()[1] for ln in listed.stdout.splitlines()) == [
        "[not_a_dump]",
        "[not_a_dump]",
        "[older_than_since]",
    ]
    assert any(ln.endswith("(a user-mode minidump (MDMP), not a kernel dump)") for ln in listed.stdout.splitlines())
    as_json = json.loads(run_cli("catalog", "list", out, "--skipped", "--json").stdout)
    assert {Path(r["path"]).name: (r["reason"], r["host"]) for r in as_json} == {
        "old.dmp": ("older_than_since", "PC1"),
        "app.dmp": ("not_a_dump", "PC2"),
        "MEMORY.DMP": ("not_a_dump", "PC2"),
    }

    # without --since the old dump is processed: its skipped row becomes its result (still one row)
    res = run_cli("batch", src, "--out", out, "--no-convert")
    assert res.returncode == 0, res.stderr
    csv_rows, page_rows = _index(out)
    assert {k: r["Status"] for k, r in csv_rows.items()} == {
        "new.dmp": "ok",
        "old.dmp": "ok",
        "app.dmp": "skipped",
        "MEMORY.DMP": "skipped",
    }
    assert len(page_rows) == 4
    listed = run_cli("catalog", "list", out, "--skipped", "--json")
    assert sorted(Path(r["path"]).name for r in json.loads(listed.stdout)) == ["MEMORY.DMP", "app.dmp"]
    # a finished MEMORY.DMP is processed the next time it is seen
    shutil.copyfile(triage_x64_path, other / "MEMORY.DMP")
    res = run_cli("batch", src, "--out", out, "--no-convert")
    assert res.returncode == 0, res.stderr
    csv_rows, _ = _index(out)
    assert csv_rows["MEMORY.DMP"]["Status"] == "ok"
    assert sum(1 for k in csv_rows if k == "MEMORY.DMP") == 1


def test_main_schema2_catalog_upgraded_by_a_batch(tmp_path: Path, triage_x64_path: Path) -> None:
    """A batch on an output folder whose catalog main wrote (schema 2): migrated in place, main's rows kept."""
    out = tmp_path / "out"
    out.mkdir()
    shutil.copyfile(Path(__file__).parent.parent / "catalog" / "data" / "schema2_main.sqlite", out / "dbgauto.sqlite")
    src = tmp_path / "src" / "PC7" / "Minidump"
    src.mkdir(parents=True)
    _user_minidump(src / "app.dmp")
    shutil.copyfile(triage_x64_path, src / "c.dmp")
    res = run_cli("batch", tmp_path / "src", "--out", out, "--no-convert")
    assert res.returncode == 0, res.stderr
    csv_rows, _ = _index(out)
    assert {k: (r["Host"], r["Status"]) for k, r in csv_rows.items()} == {
        "a.dmp": ("PC1", "ok"),
        "b.dmp": ("PC2", "ok"),
        "bad.dmp": ("PC2", "failed"),
        "c.dmp": ("PC7", "ok"),
        "app.dmp": ("PC7", "skipped"),
    }


def test_scan_reasons_from_real_files(tmp_path: Path, triage_x64_path: Path) -> None:
    """What discovery says of each kind of file, checked against how the files were made (a zip written by
    zipfile, a minidump header per MINIDUMP_HEADER, zero fill, a vanished file)."""
    import zipfile
    from datetime import UTC, datetime

    from dbgauto.batch.discover import Found, Skipped, dump_signature_problem, scan

    root = tmp_path / "PC1"
    root.mkdir()
    shutil.copyfile(triage_x64_path, root / "good.dmp")
    shutil.copyfile(triage_x64_path, root / "renamed.bin")  # a dump by its signature, whatever its name
    with zipfile.ZipFile(root / "zipped.dmp", "w") as zf:
        zf.write(triage_x64_path, "MEMORY.DMP")
    (root / "zeros.dmp").write_bytes(bytes(4096))
    _user_minidump(root / "user.DMP")  # the suffix is compared case-insensitively
    (root / "readme.txt").write_text("x")
    past = time.time() - 10 * DAY
    old_bin = root / "old.bin"
    shutil.copyfile(triage_x64_path, old_bin)
    os.utime(old_bin, (past, past))
    since = datetime.fromtimestamp(time.time() - DAY, UTC)
    seen = scan([root, root / "good.dmp"], since=since)  # named twice: listed once
    assert [f.path.name for f in seen.found] == ["good.dmp", "renamed.bin"]
    assert all(isinstance(f, Found) for f in seen.found)
    reasons = {k.path.name: (k.reason, k.message) for k in seen.skipped}
    assert all(isinstance(k, Skipped) for k in seen.skipped)
    assert reasons == {
        "user.DMP": ("not_a_dump", "a user-mode minidump (MDMP), not a kernel dump"),
        "zeros.dmp": ("not_a_dump", "starts with zero bytes (a dump the crash did not finish writing?)"),
        "zipped.dmp": ("not_a_dump", "a zip archive: extract the dump first"),
    }  # old.bin: older than --since and not named like a dump, so not listed (its signature is not read)
    gone = root / "gone.dmp"
    reason, message = dump_signature_problem(gone) or ("", "")
    assert (reason, message.startswith("cannot read: ")) == ("unreadable", True)  # the OS's words follow
    assert dump_signature_problem(root / "good.dmp") is None
