"""Ctrl-C: exit status 130, and a batch says how to go on ("rerun the same command to resume"). A real batch
subprocess waits for the output folder's lock (held here), then gets SIGINT as a terminal's Ctrl-C sends it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbgauto.batch.lock import batch_lock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery to a child is POSIX here")


def test_ctrl_c_in_batch_is_130_with_resume_hint(tmp_path: Path) -> None:
    src = tmp_path / "dumps"
    src.mkdir()
    out = tmp_path / "out"
    with batch_lock(out):
        proc = subprocess.Popen(
            [sys.executable, "-m", "dbgauto", "batch", str(src), "--out", str(out), "--wait", "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)  # started and waiting for the lock
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted — rerun the same command to resume" in err
    assert "Traceback" not in err
