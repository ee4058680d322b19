"""scripts/demo.py, the README's main job, run as users run it (a child process, in a fresh folder): with the shared
material (inflated dumps from the real small dump, plus 32-bit synthetic kernel worlds) and without it (synthetic
kernel worlds only): every good sample converts and reports, only the deliberately broken file fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from batchkit import REPO

from dbgauto.catalog.db import CATALOG_NAME, Catalog


def _demo(folder: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder.parent,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _check_first_run(folder: Path, first: subprocess.CompletedProcess[str], good: int) -> None:
    assert first.returncode == 0, first.stderr
    out = folder / "out"
    for line in (f"index.html:  {out / 'index.html'}", f"catalog:     {out / CATALOG_NAME}"):
        assert line in first.stdout
    assert (out / "index.html").is_file()
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        failed = cat.latest(status="failed")
        assert [Path(r["path"]).name for r in failed] == ["cut-in-header.dmp"]
        assert len(cat.latest(status="ok")) == good


def test_demo_runs_the_main_job_and_reruns_quietly(tmp_path: Path, shared_dir: Path) -> None:
    folder = tmp_path / "dbgauto-demo"
    first = _demo(folder, {"DBGAUTO_SHARED": str(shared_dir)})
    # 3 inflated large dumps + the real small dump + 2 synthetic 32-bit worlds
    _check_first_run(folder, first, good=6)
    small = sorted(p.name for p in (folder / "out" / "small").glob("*.mini.dmp"))
    assert len(small) == 5  # the five large dumps; the real small dump needs no conversion
    assert any(name.startswith("active-") for name in small)  # the 32-bit Active dump converted too
    second = _demo(folder)
    assert second.returncode == 0
    assert "nothing new" in second.stdout


def test_demo_without_shared_material_converts_synthetic_worlds(tmp_path: Path) -> None:
    folder = tmp_path / "dbgauto-demo"
    first = _demo(folder, {"DBGAUTO_SHARED": str(tmp_path / "nonexistent")})
    assert "generating synthetic kernel worlds" in first.stdout
    _check_first_run(folder, first, good=5)
    out = folder / "out"
    assert len(list((out / "small").glob("*.mini.dmp"))) == 5  # x64 types 6/1/5, x86 PAE type 1, x86 type 5
    culprits = set()
    machines = set()
    for report in (out / "reports").glob("*.json"):
        facts = json.loads(report.read_text())
        if facts.get("culprit"):
            culprits.add(facts["culprit"]["name"])
        machines.add(facts.get("machine"))
    # the culprit drivers demo.py chose for its five worlds
    assert culprits == {"vendornet.sys", "acmefilt.sys", "gpuhelper.sys", "fastdisk.sys", "crashy.sys"}
    assert len(machines) == 2  # 64- and 32-bit
