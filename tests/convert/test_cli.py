"""``dbgauto convert`` as a user runs it: a real subprocess on inflated dumps."""

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


def test_default_output_next_to_source_and_no_overwrite(source: Path, tmp_path: Path) -> None:
    r = _run(source, cwd=tmp_path)
    out = tmp_path / "MEMORY.mini.dmp"
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{out}  {out.stat().st_size} bytes"
    assert out.read_bytes()[:8] == b"PAGEDU64"
    again = _run(source, cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [f"dbgauto: {source}: {out}: exists (use --force to overwrite)"]
    assert "warning: " in r.stderr  # memory the dump lacks is reported, not fatal
    forced = _run(source, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr


def test_output_folder_several_sources_and_failures(source: Path, cases: dict[str, Any], tmp_path: Path) -> None:
    other = cases["complete"].inflated.path
    outdir = tmp_path / "small"
    r = _run(source, other, tmp_path / "missing.dmp", "-o", outdir, cwd=tmp_path)
    assert r.returncode == 1
    assert sorted(p.name for p in outdir.iterdir()) == ["MEMORY.mini.dmp", "complete.mini.dmp"]
    assert len(r.stdout.strip().splitlines()) == 2
    errors = [line for line in r.stderr.strip().splitlines() if not line.startswith("warning: ")]
    assert errors == [f"dbgauto: {tmp_path / 'missing.dmp'}: no such file"]
    assert any(line.startswith(f"warning: {source}: data blocks: skipped") for line in r.stderr.splitlines())


def test_output_file_and_engine_choice(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "named.dmp"
    r = _run(source, "-o", target, "--engine", "auto", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert target.exists()
    bad = _run(source, "--engine", "windbg", cwd=tmp_path)
    assert bad.returncode == 2


@pytest.mark.skipif(sys.platform == "win32", reason="on Windows cdb may really be installed")
def test_debugger_engine_unavailable_is_one_line(source: Path, tmp_path: Path) -> None:
    r = _run(source, "--engine", "cdb", cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"dbgauto: {source}: cdb: unavailable")
    assert not (tmp_path / "MEMORY.mini.dmp").exists()


# --- output choices and output failures, as a user meets them


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
