"""``dbgauto convert`` output choices and output failures, as a user meets them (real subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbgauto", "convert", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture
def source(cases: dict[str, Any], tmp_path: Path) -> Path:
    src = tmp_path / "MEMORY.DMP"
    src.symlink_to(cases["kernel-bitmap"].inflated.path)
    return src


def test_trailing_separator_makes_a_folder(source: Path, tmp_path: Path) -> None:
    r = _run(source, "-o", "newdir/", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "newdir").is_dir()
    assert (tmp_path / "newdir" / "MEMORY.mini.dmp").read_bytes()[:8] == b"PAGEDU64"


def test_one_file_for_several_sources_is_a_usage_error(source: Path, cases: dict[str, Any], tmp_path: Path) -> None:
    r = _run(source, cases["complete"].inflated.path, "-o", "one.dmp", cwd=tmp_path)
    assert r.returncode == 2
    assert "one.dmp" in r.stderr
    assert "folder" in r.stderr
    assert not (tmp_path / "one.dmp").exists()


def test_unwritable_output_names_the_output_not_the_source(source: Path, tmp_path: Path) -> None:
    """An OSError on the output (here: its folder is a file) is ``output: reason``, exit 1, never internal."""
    (tmp_path / "plainfile").write_text("x")
    out = tmp_path / "plainfile" / "out.dmp"
    r = _run(source, "-o", out, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    [line] = r.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"dbgauto: {tmp_path / 'plainfile'}")
    assert "Not a directory" in line or "is a file, not a folder" in line
    assert "internal error" not in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_source_does_not_stop_the_others(source: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.dmp"
    bad.write_bytes(b"PAGEDU64" + bytes(100))
    r = _run(bad, source, "-o", "out/", cwd=tmp_path)
    assert r.returncode == 1
    assert "bad.dmp" in r.stderr
    assert (tmp_path / "out" / "MEMORY.mini.dmp").is_file()
