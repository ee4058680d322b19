"""The fleet view end to end through the real CLI: hosts from the folder layout, the index (buckets, changes,
every dump with its status, rows as JSON data), `catalog buckets` / `catalog changes`, --keep-days, and a
corrupt catalog reported and left alone."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
from pathlib import Path

from batchkit import run_cli

from dbgauto.report.fleet import decode_rows


def _copy(root: Path, triage: Path, names: list[str]) -> list[Path]:
    out = []
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(triage, p)
        out.append(p)
    return out


def test_hosts_index_and_catalog_commands(tmp_path: Path, triage_x64_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _copy(src, triage_x64_path, ["site/PC1/Minidump/a.dmp", "site/PC2/Minidump/b.dmp", "site/PC2/other/c.dmp"])
    bad = src / "site" / "PC3" / "Minidump" / "bad.dmp"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(triage_x64_path.read_bytes()[:0x900])
    res = run_cli("batch", src, "--out", out, "--no-convert", "--host-from", "**/{host}/Minidump/*")
    assert res.returncode == 1, res.stderr
    with open(out / "index.csv", newline="", encoding="utf-8-sig") as fh:
        rows = {Path(r["Full Path"]).name: r for r in csv.DictReader(fh)}
    assert {k: r["Host"] for k, r in rows.items()} == {"a.dmp": "PC1", "b.dmp": "PC2", "c.dmp": "", "bad.dmp": "PC3"}
    assert rows["bad.dmp"]["Status"] == "failed"
    assert rows["bad.dmp"]["Reason"].startswith("[truncated]")
    assert rows["a.dmp"]["Bucket"] == "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M_amdppm"
    html = (out / "index.html").read_text()
    assert html.rstrip().endswith("</html>")
    data = re.search(r'<script type="application/json" id="rows">(.*?)</script>', html, re.S)
    assert data is not None
    rows_shown = decode_rows(json.loads(data.group(1)))
    assert len(rows_shown) == 4
    names = [r["file"] for r in rows_shown]
    assert sorted(names) == ["a.dmp", "b.dmp", "bad.dmp", "c.dmp"]
    assert 'id="bucketview"' in html
    assert '<svg class="spark"' in html
    assert 'new</span> <span class="mono">SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M_amdppm</span>: 3 dump(s)' in html
    # the page's only script is allowed by its hash; nothing is fetched
    csp = re.search(r"script-src '(sha256-[^']+)'", html)
    assert csp is not None
    assert "http://" not in html.split('<script type="application/json"')[0].replace("http://www.w3.org", "")

    buckets = run_cli("catalog", "buckets", out, "--json")
    assert buckets.returncode == 0, buckets.stderr
    [b] = json.loads(buckets.stdout)
    assert (b["count"], b["hosts"], b["builds"]) == (3, 2, "19041")
    changes = run_cli("catalog", "changes", out, "--since", "2000-01-01", "--json")
    ch = json.loads(changes.stdout)
    assert ch["recorded"] == 3
    assert ch["failed"] == 1
    assert [x["bucket"] for x in ch["new_buckets"]] == [b["bucket"]]
    listing = run_cli("catalog", "list", out)
    assert "host=PC3" in listing.stdout
    assert "None" not in listing.stdout


def test_keep_days_removes_old_outputs_never_sources(tmp_path: Path, triage_x64_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    [old_src] = _copy(src, triage_x64_path, ["PC1/old.dmp"])
    assert run_cli("batch", src, "--out", out, "--no-convert").returncode == 0
    reports = sorted((out / "reports").iterdir())
    assert reports
    ancient = time.time() - 40 * 86400
    for p in [*reports, old_src]:
        os.utime(p, (ancient, ancient))
    _copy(src, triage_x64_path, ["PC2/new.dmp"])
    res = run_cli("batch", src, "--out", out, "--no-convert", "--keep-days", "30")
    assert res.returncode == 0, res.stderr
    assert old_src.exists()  # a source, however old
    assert not any(p.exists() for p in reports)
    assert any("new" in p.name for p in (out / "reports").iterdir())
    assert (out / "dbgauto.sqlite").exists()


def test_corrupt_catalog_is_reported_and_kept(tmp_path: Path, triage_x64_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _copy(src, triage_x64_path, ["PC1/a.dmp"])
    out.mkdir()
    junk = b"SQLite format 3\0" + os.urandom(4000)
    (out / "dbgauto.sqlite").write_bytes(junk)
    res = run_cli("batch", src, "--out", out, "--no-convert")
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "dbgauto.sqlite: not a usable dbgauto catalog" in lines[0]
    assert "left as it is" in lines[0]
    assert (out / "dbgauto.sqlite").read_bytes() == junk
