"""scripts/demo.py, the README's main job, run as users run it (a child process, in a fresh folder)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from batchkit import REPO

from dbgauto.catalog.db import CATALOG_NAME, Catalog


def _demo(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder.parent,
        check=False,
    )


def test_demo_runs_the_main_job_and_reruns_quietly(tmp_path: Path, shared_dir: Path) -> None:
    folder = tmp_path / "dbgauto-demo"
    first = _demo(folder)
    assert first.returncode == 0, first.stderr
    out = folder / "out"
    for line in (f"index.html:  {out / 'index.html'}", f"catalog:     {out / CATALOG_NAME}"):
        assert line in first.stdout
    assert (out / "index.html").is_file()
    assert len(list((out / "small").glob("*.mini.dmp"))) == 3  # the three inflated large dumps
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        failed = cat.latest(status="failed")
        assert [Path(r["path"]).name for r in failed] == ["cut-in-header.dmp"]
        assert len(cat.latest(status="ok")) == 4
    second = _demo(folder)
    assert second.returncode == 0
    assert "nothing new" in second.stdout
