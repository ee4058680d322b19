"""Two batches on one output folder: the lock is held by a real second process; nothing is corrupted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from batchkit import REPO, run_cli

from dbgauto.batch.lock import LOCK_NAME, batch_lock
from dbgauto.catalog.db import CATALOG_NAME, Catalog
from dbgauto.errors import CatalogLockedError

HOLDER = """
import sys, time
from dbgauto.batch.lock import batch_lock
with batch_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold(out: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out), str(seconds)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_fails_fast_then_waits(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _hold(out, 1.5)
    held_at = time.monotonic()
    try:
        t0 = time.monotonic()
        pattern = r"another dbgauto batch is running here \(pid \d+"
        with pytest.raises(CatalogLockedError, match=pattern) as info, batch_lock(out):
            pass
        assert time.monotonic() - t0 < 1.0
        assert str(out / LOCK_NAME) in str(info.value)
        assert info.value.code == "catalog_locked"
        with batch_lock(out, wait=True, timeout=30):  # returns once the holder exits
            assert time.monotonic() - held_at >= 1.4  # it really waited for the holder to let go
    finally:
        proc.wait(timeout=30)


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _hold(out, 60)
    proc.kill()
    proc.wait(timeout=10)
    with batch_lock(out, wait=True, timeout=5):
        pass


def test_cli_batch_exits_with_a_clear_message_while_locked(tmp_path: Path, synth_tree) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    proc = _hold(out, 30)
    try:
        res = run_cli("batch", synth_tree.root, "--out", out, "--no-convert", "--no-report")
        assert res.returncode == 1
        assert "another dbgauto batch is running here" in res.stderr
        assert "--wait" in res.stderr
        assert not (out / CATALOG_NAME).exists()  # the loser never opened the catalog
    finally:
        proc.kill()
        proc.wait(timeout=10)
    res = run_cli(
        "batch", synth_tree.root, "--out", out, "--no-convert", "--no-report", "--wait", "--wait-timeout", "10"
    )
    assert res.returncode == 1  # the broken dumps fail; the run itself went through
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        assert cat.integrity_check() == "ok"
        assert cat.count("runs") == 1
