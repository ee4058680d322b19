"""``dbgauto report`` and ``dbgauto templates`` through the real command line."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dbgauto.cli import cli


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbgauto", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_report_on_dump_folder_and_logs(tmp_path: Path, shared_dir: Path) -> None:
    out = tmp_path / "out"
    logs = sorted((shared_dir / "transcripts").glob("T1[12]_*.log"))
    args = ["report", str(shared_dir / "dumps"), "-o", str(out), "-f", "html", "-f", "json", "-f", "csv"]
    for log in logs:
        args += ["--from-log", str(log)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert "index.html" in names
    assert "report.csv" in names
    assert len([n for n in names if n.endswith(".html")]) == 4  # 3 reports + index
    dump_json = next(p for p in out.glob("triage_x64-*.json"))  # the stem batch gives the same dump
    data = json.loads(dump_json.read_text(encoding="ascii"))
    assert data["culprit"]["name"] == "amdppm.sys"
    index = (out / "index.html").read_text(encoding="utf-8")
    for p in out.glob("*.html"):
        if p.name != "index.html":
            assert f'href="{p.name}"' in index
    rows = list(csv.DictReader((out / "report.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert sorted(r["Bug Check Code"] for r in rows) == ["0x0000003b", "0x00000124", "0x1000007e"]


def test_failures_are_one_line_each_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dmp"
    bad.write_bytes(b"PAGEDU64" + bytes(16))
    result = _run("report", str(tmp_path / "absent.dmp"), str(bad), "-o", str(tmp_path / "out"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(f"dbgauto: {tmp_path / 'absent.dmp'}: ")
    assert lines[1].startswith(f"dbgauto: {bad}: ")
    assert "Traceback" not in result.stderr


def test_report_needs_an_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "-o", str(tmp_path)])
    assert result.exit_code == 2


def test_templates_export_and_use(tmp_path: Path, shared_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["templates", "export", str(tmp_path / "tpl")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tpl" / "report.txt").is_file()
    (tmp_path / "tpl" / "report.txt").write_text("MINE {{ facts.bugcheck.name }}\n", encoding="utf-8")
    log = next((shared_dir / "transcripts").glob("T11_*.log"))
    out = tmp_path / "out"
    result = runner.invoke(
        cli, ["report", "--from-log", str(log), "-o", str(out), "-f", "txt", "--templates", str(tmp_path / "tpl")]
    )
    assert result.exit_code == 0, result.output
    (txt,) = out.glob("*.txt")
    assert txt.read_text(encoding="utf-8") == "MINE WHEA_UNCORRECTABLE_ERROR\n"
    again = runner.invoke(cli, ["templates", "export", str(tmp_path / "tpl")])
    assert again.exit_code == 1
