"""Two batches on one output folder: the lock is held by a real second process; nothing is corrupted."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from batchkit import REPO, run_cli

from dbgauto.batch.lock import LOCK_NAME, batch_lock
from dbgauto.catalog.db import CATALOG_NAME, Catalog
from dbgauto.errors import CatalogLockedError

HOLDER = """
import sys
from pathlib import Path
from dbgauto.batch.lock import batch_lock
with batch_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()  # hold until the test says so (or kills this process)
    Path(sys.argv[1], "released-by-holder").touch()  # written while still holding: a later holder must see it
"""
RELEASED = "released-by-holder"


def _hold(out: Path) -> subprocess.Popen[str]:
    """A real second process holding the lock on ``out`` until a line arrives on its stdin (or it is killed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("release\n")
    proc.stdin.flush()


def test_second_holder_fails_fast_then_waits(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _hold(out)
    try:
        # fails at once: the holder holds until told, so a call that waited for it could not return here
        pattern = r"another dbgauto batch is running here \(pid \d+"
        with pytest.raises(CatalogLockedError, match=pattern) as info, batch_lock(out):
            pass
        assert str(out / LOCK_NAME) in str(info.value)
        assert "still held after" not in str(info.value)  # the no-wait path, not a timed-out wait
        assert info.value.code == "catalog_locked"
        assert f"pid {proc.pid} " in str(info.value)  # names the real holder
        # --wait-timeout: waits, then gives up while the holder still holds
        timed_out = pytest.raises(CatalogLockedError, match=r"still held after 0\.2s")
        with timed_out, batch_lock(out, wait=True, timeout=0.2):
            pass
        assert proc.poll() is None
        # wait=True: blocks while held and returns once the holder lets go (never before: the holder's marker,
        # written while it still held the lock, is there when this side gets it)
        seen: list[bool] = []
        attempting = threading.Event()

        def waiter() -> None:
            attempting.set()
            with batch_lock(out, wait=True, timeout=60):
                seen.append((out / RELEASED).exists())

        thread = threading.Thread(target=waiter)
        thread.start()
        assert attempting.wait(60)
        _release(proc)
        thread.join(60)
        assert seen == [True]
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _hold(out)
    proc.kill()
    proc.wait(timeout=10)
    with batch_lock(out):  # no waiting: the OS released the dead holder's lock
        pass


def test_cli_batch_exits_with_a_clear_message_while_locked(tmp_path: Path, synth_tree) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    proc = _hold(out)
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
