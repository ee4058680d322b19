"""The identity hash that decides "same content" for a path whose mtime changed (docs/scheduling.md): SHA-256 of
the head and the tail plus the size. A copy still being written when a run read it is processed again once it
is complete; a touched dump is not; a catalog recorded with the older first-MiB hash still recognises its dumps.

Real data: the small dump in ../shared (1.44 MB: its last 200 KiB lie beyond the first MiB). Expectations from
the files made here and hashlib over their bytes, through the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest
from batchkit import run_cli

from dbgauto.catalog.db import CATALOG_NAME

SHARED = Path(os.environ.get("DBGAUTO_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
DUMP = SHARED / "dumps" / "triage_x64.dmp"
CATALOG_ONLY = ("--no-convert", "--formats", "none", "--json")

pytestmark = pytest.mark.skipif(not DUMP.is_file(), reason="../shared dump absent")


def _run(src: Path, out: Path) -> dict[str, object]:
    res = run_cli("batch", src, "--out", out, *CATALOG_ONLY)
    assert res.returncode in (0, 1), res.stderr
    return json.loads(res.stdout)


def _set_mtime(path: Path, seconds: int) -> None:
    os.utime(path, (seconds, seconds))


def test_a_copy_finished_after_a_run_read_it_is_processed_again(tmp_path: Path) -> None:
    data = DUMP.read_bytes()
    assert len(data) > (1 << 20) + 200_000
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    dump = src / "MEMORY.DMP"
    dump.write_bytes(data[:-200_000] + bytes(200_000))  # the size is final, the last 200 KiB not yet written
    _set_mtime(dump, 1_700_000_000)
    assert _run(src, out)["succeeded"] == 1
    dump.write_bytes(data)  # the copy completes; copy tools then set the source's mtime
    _set_mtime(dump, 1_700_000_100)
    again = _run(src, out)
    assert (again["succeeded"], again["skipped"]) == (1, 0)
    _set_mtime(dump, 1_700_000_200)  # touched only: the same content
    touched = _run(src, out)
    assert (touched["succeeded"], touched["skipped"]) == (0, 1)


def test_a_catalog_with_first_mib_hashes_still_knows_its_dumps(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    dump = src / "MEMORY.DMP"
    dump.write_bytes(DUMP.read_bytes())
    _set_mtime(dump, 1_700_000_000)
    assert _run(src, out)["succeeded"] == 1
    data = dump.read_bytes()
    n = len(data)
    head_tail = hashlib.sha256(data[: 1 << 16] + data[n - (1 << 16) :] + n.to_bytes(8, "little")).hexdigest()
    first_mib = hashlib.sha256(data[: 1 << 20] + n.to_bytes(8, "little")).hexdigest()
    with sqlite3.connect(out / CATALOG_NAME) as conn:  # as the previous version recorded it
        assert conn.execute("SELECT hash FROM dumps").fetchall() == [(f"sha256-ht:{head_tail}",)]
        conn.execute("UPDATE dumps SET hash = ?", (f"sha256-1m:{first_mib}",))
        conn.execute("UPDATE results SET hash = ?", (f"sha256-1m:{first_mib}",))
    conn.close()
    _set_mtime(dump, 1_700_000_100)
    touched = _run(src, out)
    assert (touched["succeeded"], touched["skipped"]) == (0, 1)
    with sqlite3.connect(out / CATALOG_NAME) as conn:  # recognised by the old hash, recorded with the new one
        assert conn.execute("SELECT hash FROM dumps").fetchall() == [(f"sha256-ht:{head_tail}",)]
    conn.close()
    dump.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # a change beyond the first MiB, the same size:
    _set_mtime(dump, 1_700_000_200)  # the old hash could not tell; the new one does
    changed = _run(src, out)
    assert (changed["succeeded"], changed["skipped"]) == (1, 0)
