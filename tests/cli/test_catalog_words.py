"""``catalog export``/``show`` follow the JSON convention of every dbgauto document (codes and addresses as
``"0x…"`` strings); ``catalog list`` prints no Python values. Run over a real batch of the real small dump."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def _cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbgauto", *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )


def test_export_uses_hex_strings(triage_x64_path: Path, groundtruth_x64: dict[str, Any], tmp_path: Path) -> None:
    src = tmp_path / "dumps"
    src.mkdir()
    shutil.copy(triage_x64_path, src / "Mini.dmp")
    (src / "broken.dmp").write_bytes(b"PAGEDU64" + bytes(64))
    out = tmp_path / "out"
    r = _cli("batch", src, "--out", out, "--formats", "json", "--no-progress")
    assert r.returncode == 1, r.stderr  # the broken dump fails, the real one succeeds
    assert "INFO dbgauto.batch" not in r.stderr
    rows = json.loads(_cli("catalog", "export", out).stdout)
    ok = next(row for row in rows if row["path"].endswith("Mini.dmp"))
    expected = (
        int(str(groundtruth_x64["bugcheck_code"]), 16)
        if isinstance(groundtruth_x64["bugcheck_code"], str)
        else groundtruth_x64["bugcheck_code"]
    )
    assert ok["bugcheck_code"] == f"{expected:#x}"
    assert ok["machine"] == "0x8664"
    show = json.loads(_cli("catalog", "show", out, "Mini.dmp").stdout)
    assert all(isinstance(p, str) and p.startswith("0x") for p in show["bugcheck_parameters"])
    listing = _cli("catalog", "list", out)
    assert "None" not in listing.stdout
