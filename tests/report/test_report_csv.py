"""One CSV row per dump with BlueScreenView-like columns."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from dbgauto.analysis.facts import CrashFacts
from dbgauto.report.csvout import CSV_COLUMNS
from dbgauto.report.render import write_csv


def test_rows_and_columns(tmp_path: Path, make_facts: Callable[..., CrashFacts]) -> None:
    items = [make_facts(i) for i in range(3)] + [CrashFacts()]
    path = write_csv(items, tmp_path / "report.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert len(rows) == 4
    first = rows[0]
    f = items[0]
    assert first["Dump File"] == "MEMORY.DMP"
    assert first["Bug Check String"] == "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M"
    assert first["Bug Check Code"] == "0x1000007e"
    assert first["Parameter 4"] == f"0x{f.bugcheck.parameters[3].value:016x}"  # type: ignore[union-attr]
    assert first["Caused By Driver"] == "vendor.sys"
    assert first["Caused By Address"] == "vendor.sys+10"
    assert first["Crash Time"] == "2024-01-01 00:00:00"
    assert first["Stack Address 1"] == "vendor.sys+0x10"
    assert first["Minor Version"] == "19041"
    assert rows[3]["Dump File"] == ""
    assert rows[3]["Warnings"] == "0"
