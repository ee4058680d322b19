"""kill -9 the batch at points of its own progress (start-up, dumps listed, a result recorded, a task in flight),
again and again: its workers exit, every rerun completes, outputs are whole, the catalog stays consistent and
every source stays byte-identical."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from batchkit import REPO, DumpTree, dbgauto_cmd, inflated_dumps, run_cli, sha256, synth_dump

from dbgauto.batch.tasks import FAULT_ENV
from dbgauto.catalog.db import CATALOG_NAME, Catalog

KILLS = 10
# kills that land while a batch is running: at least the runs held up by a hung task (every other one); the
# others may land after their batch finished (also valid)
MIN_HITS = KILLS // 2
KILL_POINTS = ("start-up", "discovered", "first result")

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="kill -9 / SIGSTOP of the coordinator, whose workers exit through the POSIX parent watch; the "
    "process group is listed from /proc",
)


def _integrity(out: Path) -> None:
    db = out / CATALOG_NAME
    if not db.exists():
        return
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # no result without its dump and run (each result is written in one transaction with its dump row)
        orphans = conn.execute(
            "SELECT count(*) FROM results r LEFT JOIN dumps d ON d.id = r.dump_id LEFT JOIN runs u ON u.id = r.run_id"
            " WHERE d.id IS NULL OR u.id IS NULL"
        ).fetchone()[0]
        assert orphans == 0
    finally:
        conn.close()


def _outputs_complete(out: Path) -> None:
    """Every visible output is whole: small dumps open as small dumps, JSON parses, HTML is closed."""
    from dbgauto.kdump.reader import KernelDump

    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue  # hidden temp files of the killed run are not outputs (the next run removes them)
        if path.name.endswith(".mini.dmp"):
            with KernelDump.open(path) as dump:
                assert int(dump.dump_type) == 4
                assert len(dump.triage.drivers) > 0
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".html":
            assert path.read_text().rstrip().endswith("</html>"), path


def _progress(out: Path) -> tuple[int, int, int]:
    """(runs recorded, dumps found by the latest run, results of the latest run), read-only; zeros before the
    catalog exists."""
    try:
        conn = sqlite3.connect(f"{(out / CATALOG_NAME).as_uri()}?mode=ro", uri=True)
        try:
            runs, found, results = conn.execute(
                "SELECT (SELECT count(*) FROM runs),"
                " coalesce((SELECT found FROM runs ORDER BY id DESC LIMIT 1), 0),"
                " (SELECT count(*) FROM results WHERE run_id = (SELECT max(id) FROM runs))"
            ).fetchone()
            return int(runs), int(found), int(results)
        finally:
            conn.close()
    except sqlite3.Error:
        return 0, 0, 0


def _reached(point: str, out: Path, runs_before: int) -> bool:
    """Has the batch started after ``runs_before`` runs reached ``point`` (an event it records in its catalog)?"""
    runs, found, results = _progress(out)
    if runs <= runs_before:
        return False
    return found > 0 if point == "discovered" else results > 0


def _wait_for(point: str, out: Path, runs_before: int, proc: subprocess.Popen[bytes]) -> None:
    """Poll the catalog for the event (or the batch's end); the deadline only bounds a broken run, no verdict
    is drawn from how long anything took."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and not _reached(point, out, runs_before) and time.monotonic() < deadline:
        time.sleep(0.005)


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc: the batch and its pool's processes."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rsplit(") ", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # gone while listing
        if state != "Z" and int(group) == pgid:
            members.append(int(stat.parent.name))
    return members


def _orphans_exit(pgid: int) -> None:
    """After kill -9 of the coordinator, its workers (and the pool's helpers) notice and exit by themselves."""
    deadline = time.monotonic() + 60
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group_members(pgid) == [], "workers of a killed batch kept running"


def _kill_repeatedly(
    tree: DumpTree, out: Path, extra: tuple[str, ...], add_dumps: Callable[[int], list[Path]]
) -> tuple[int, dict[Path, str]]:
    """Start and SIGKILL the batch KILLS times, with new dumps before each start (so every run has work);
    returns how many kills hit a running batch, and the new dumps' sha256 taken when they were written.

    Kill points are events, not delays: at start-up, once the run has listed its dumps, or once its first
    result is recorded (in turn). Every other run gets two new dumps, and the first one's
    task hangs (DBGAUTO_FAULT_INJECT): that batch cannot finish, and it is killed once another task's result is
    recorded, so the kill always lands mid-run with a task in flight. The batch is frozen (SIGSTOP) before it
    is judged running, so it cannot finish between the check and the kill."""
    hits = 0
    added: dict[Path, str] = {}
    base_env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    for i in range(KILLS):
        new = add_dumps(i)
        for path in new:
            tree.good.append(path)
            added[path] = sha256(path)
        runs_before = _progress(out)[0]
        hang = i % 2 == 1
        assert len(new) >= 2 or not hang  # one new task hangs, another one's result marks the kill point
        point = "first result" if hang else KILL_POINTS[i // 2 % len(KILL_POINTS)]
        proc = subprocess.Popen(
            dbgauto_cmd("batch", tree.root, "--out", out, "--jobs", "2", *extra),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**base_env, FAULT_ENV: f"hang:{new[0].name}"} if hang else base_env,
            start_new_session=True,  # its own process group: the pool's processes are found by group id
        )
        if point != "start-up":
            _wait_for(point, out, runs_before, proc)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGSTOP)
        running = proc.poll() is None
        assert running or not hang, f"kill {i}: the batch held up by a hung task finished"
        hits += running
        proc.kill()  # SIGKILL: no cleanup handler runs
        proc.wait(timeout=30)
        _orphans_exit(proc.pid)
        _integrity(out)
        _outputs_complete(out)
    return hits, added


def _check_final(tree: DumpTree, out: Path, extra: tuple[str, ...], before: dict[Path, str]) -> None:
    final = run_cli("batch", tree.root, "--out", out, "--jobs", "2", "--json", *extra)
    assert final.returncode in (0, 1), final.stderr  # 1 when a broken one was left for this run
    failed_now = {f["source"] for f in json.loads(final.stdout)["failed"]}
    assert failed_now <= {str(p.resolve()) for p in tree.broken}
    _integrity(out)
    _outputs_complete(out)
    assert not [p for p in out.rglob("*.partial")], "temporary files left behind"
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        latest = {r["path"]: r for r in cat.latest()}
        assert {p for p, r in latest.items() if r["status"] == "ok"} == {str(p.resolve()) for p in tree.good}
        assert {p for p, r in latest.items() if r["status"] == "failed"} == {str(p.resolve()) for p in tree.broken}
        for r in latest.values():
            for stored in [r["small_path"], *json.loads(r["report_paths"] or "{}").values()]:
                if stored:
                    assert cat.absolute(stored).is_file()
        assert all(r["status"] in ("completed", "interrupted") for r in cat.runs())
    again = run_cli("batch", tree.root, "--out", out, *extra)
    assert again.returncode == 0
    assert "nothing new" in again.stdout
    assert tree.hashes() == before  # sources byte-identical after every kill


def test_kill_9_inventory_runs(synth_tree: DumpTree, tmp_path: Path) -> None:
    before = synth_tree.hashes()
    extra = ("--no-convert", "--no-report")

    def add(i: int) -> list[Path]:
        arch, dump_type = ("x64", 6) if i % 2 == 0 else ("x86pae", 5)
        names = (f"n{i}.dmp", f"m{i}.dmp")[: 1 + i % 2]  # two on the runs with a hung task
        return [synth_dump(synth_tree.root / "new" / name, arch, dump_type, 0x10 + i) for name in names]

    hits, added = _kill_repeatedly(synth_tree, tmp_path / "out", extra, add)
    assert hits >= MIN_HITS, f"only {hits} of {KILLS} kills hit a running batch"
    before.update(added)
    _check_final(synth_tree, tmp_path / "out", extra, before)


def test_kill_9_full_runs(full_tree: DumpTree, tmp_path: Path, triage_x64_path: Path) -> None:
    before = full_tree.hashes()
    extra = ("--formats", "html,json")

    def add(i: int) -> list[Path]:
        return inflated_dumps(full_tree.root / f"new{i}", triage_x64_path, count=1 + i % 2)

    hits, added = _kill_repeatedly(full_tree, tmp_path / "out", extra, add)
    assert hits >= MIN_HITS, f"only {hits} of {KILLS} kills hit a running batch"
    before.update(added)
    _check_final(full_tree, tmp_path / "out", extra, before)
