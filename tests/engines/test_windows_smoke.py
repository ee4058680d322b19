"""scripts/windows_smoke.py's own logic, run with the cdb engine driving ``dbgauto shell`` (no Windows here)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "windows_smoke.py"
CHECKS = ("available", "open", "vertarget", ".bugcheck", "lm", "!analyze -v", ".dump /m", "re-open small dump")


def test_smoke_table_passes_for_a_working_engine_and_fails_for_a_missing_one(triage_x64_path: Path) -> None:
    shell = f"{shlex.quote(sys.executable)} -m dbgauto shell"
    args = [sys.executable, str(SCRIPT), "--engines", "cdb,dbgeng", "--debugger-path", shell, "--timeout", "60"]
    proc = subprocess.run([*args, str(triage_x64_path)], capture_output=True, text=True, timeout=120, check=False)
    rows = [line.split(None, 2) for line in proc.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    cdb = [r for r in rows if r[1] == "cdb"]
    assert [r[2].startswith(check) for r, check in zip(cdb, CHECKS, strict=True)] == [True] * len(CHECKS)
    assert all(r[0] == "PASS" for r in cdb), proc.stdout
    if sys.platform != "win32":
        dbgeng = [r for r in rows if r[1] == "dbgeng"]
        assert [(r[0], r[2].split()[0]) for r in dbgeng] == [("FAIL", "available")]  # not Windows
        assert proc.returncode == 1
    assert "passed" in proc.stdout
