"""The Windows CI job cannot run here; this keeps its definition valid and saying what it must do.

Validation: check-jsonschema against its vendored GitHub workflow schema (SchemaStore's github-workflow.json),
offline. (actionlint is preferred where it can be installed; its pip wrapper downloads a binary at build time.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "windows.yml"


def test_workflow_validates_against_the_github_schema() -> None:
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).with_name("check-jsonschema"))
    if not Path(tool).exists():
        pytest.skip("check-jsonschema is not installed (pip install -e '.[dev]')")
    res = subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_actionlint_when_available() -> None:
    tool = shutil.which("actionlint")
    if tool is None:
        pytest.skip("actionlint is not installed here")
    res = subprocess.run([tool, str(WORKFLOW)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_workflow_does_what_the_readme_says() -> None:
    wf = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    job = wf["jobs"]["windows"]
    assert job["runs-on"] == "windows-latest"
    assert job["env"]["DBGAUTO_REQUIRE_WINDOWS_ENGINES"] == "1"
    steps = job["steps"]
    uses = [s.get("uses", "") for s in steps]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert any(u.startswith("actions/setup-python@") for u in uses)
    assert "cdb.exe" in runs
    assert "choco install" in runs
    assert '".[dev,dbgeng]"' in runs  # pybag: the DbgEng engine
    assert 'pytest -q -m "cdb or dbgeng or not (cdb or dbgeng)"' in runs
    assert "scripts/make_synth_dumps.py" in runs
    assert "scripts/windows_smoke.py --engines dbgeng,cdb" in runs
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    assert "smoke-table.txt" in upload["with"]["path"]
    for script in ("make_synth_dumps.py", "windows_smoke.py"):
        assert (REPO / "scripts" / script).is_file()
