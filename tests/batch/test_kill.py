"""kill -9 the batch at random points, again and again: every rerun completes, outputs are whole, the catalog
stays consistent and every source stays byte-identical."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from batchkit import REPO, DumpTree, dbgauto_cmd, inflated_dumps, run_cli, sha256, synth_dump

from dbgauto.catalog.db import CATALOG_NAME, Catalog

KILLS = 10
MIN_HITS = 4  # kills that land while a batch is running (the others land after it finished: also valid)


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


def _run_count(out: Path) -> int:
    try:
        conn = sqlite3.connect(f"{(out / CATALOG_NAME).as_uri()}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _wait_for_new_run(out: Path, runs_before: int, proc: subprocess.Popen[bytes], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None and _run_count(out) <= runs_before:
        time.sleep(0.01)


def _kill_repeatedly(
    tree: DumpTree, out: Path, extra: tuple[str, ...], longest: float, add_dumps: Callable[[int], list[Path]]
) -> tuple[int, dict[Path, str]]:
    """Start and SIGKILL the batch KILLS times, with one new dump before each start (so every run has work);
    returns how many kills hit a running batch, and the new dumps' sha256 taken when they were written."""
    rng = random.Random(20261124)
    hits = 0
    added: dict[Path, str] = {}
    for i in range(KILLS):
        for path in add_dumps(i):
            tree.good.append(path)
            added[path] = sha256(path)
        runs_before = _run_count(out)
        proc = subprocess.Popen(
            dbgauto_cmd("batch", tree.root, "--out", out, "--jobs", "2", *extra),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if i % 2 == 0:  # anywhere from start-up on
            time.sleep(rng.uniform(0.02, longest))
        else:  # once this run is recorded (discovery done, tasks starting), a little later
            _wait_for_new_run(out, runs_before, proc)
            time.sleep(rng.uniform(0.0, longest / 4))
        hits += proc.poll() is None
        proc.kill()  # SIGKILL: no cleanup handler runs
        proc.wait(timeout=30)
        _integrity(out)
        _outputs_complete(out)
        time.sleep(0.6)  # the orphaned workers notice their coordinator is gone and exit
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
        return [synth_dump(synth_tree.root / "new" / f"n{i}.dmp", arch, dump_type, 0x10 + i)]

    hits, added = _kill_repeatedly(synth_tree, tmp_path / "out", extra, 0.5, add)
    assert hits >= MIN_HITS, f"only {hits} of {KILLS} kills hit a running batch"
    before.update(added)
    _check_final(synth_tree, tmp_path / "out", extra, before)


def test_kill_9_full_runs(full_tree: DumpTree, tmp_path: Path, triage_x64_path: Path) -> None:
    before = full_tree.hashes()
    extra = ("--formats", "html,json")

    def add(i: int) -> list[Path]:
        return inflated_dumps(full_tree.root / f"new{i}", triage_x64_path, count=1 + i % 2)

    hits, added = _kill_repeatedly(full_tree, tmp_path / "out", extra, 1.5, add)
    assert hits >= MIN_HITS, f"only {hits} of {KILLS} kills hit a running batch"
    before.update(added)
    _check_final(full_tree, tmp_path / "out", extra, before)
