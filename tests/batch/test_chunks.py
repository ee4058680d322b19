"""Small dumps share local tasks (chunks): every source still gets exactly one record, a source that kills
its worker or hangs is failed alone (the chunk's others complete), and reports leave the worker published.

The tasks run in real worker processes of the local pool; the task function is this module's (workers import
it by name), so each behaviour is chosen by file name without environment variables."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from batchkit import run_cli

import dbgauto.batch.tasks as tasks_module
from dbgauto.batch.runner import RunnerOptions, TaskRunner
from dbgauto.batch.tasks import TaskSpec, run_task
from dbgauto.catalog.db import CATALOG_NAME, Catalog
from dbgauto.catalog.records import ResultRecord

COUNT = 16  # with one worker: chunks of 16 // 4 = 4 sources


def chunk_reporting(spec: TaskSpec) -> ResultRecord:
    """run_task, noting the size of the chunk it ran in."""
    rec = run_task(spec)
    chunk = tasks_module.current_chunk()
    rec.warnings.append(f"chunk {chunk.size if chunk is not None else 0}")
    return rec


def faulty(spec: TaskSpec) -> ResultRecord:
    """run_task, except that ``die.dmp`` ends its worker process and ``hang.dmp`` never returns."""
    name = Path(spec.source).name
    if name == "die.dmp":
        os._exit(70)
    if name == "hang.dmp":
        while True:
            time.sleep(3600)
    return run_task(spec)


def _specs(tmp_path: Path, names: list[str]) -> list[TaskSpec]:
    return [TaskSpec(str(tmp_path / n), 0, 0) for n in names]  # missing files: each task fails "not_found" fast


def _run(specs: list[TaskSpec], fn: object, **options: object) -> dict[str, list[ResultRecord]]:
    got: dict[str, list[ResultRecord]] = {}
    with TaskRunner(RunnerOptions(jobs=1, shutdown_timeout=2.0, **options)) as runner:  # type: ignore[arg-type]
        runner.run(specs, fn, on_done=lambda s, r: got.setdefault(s.source, []).append(r))  # type: ignore[arg-type]
    return got


def test_small_sources_travel_in_chunks_and_each_gets_one_record(tmp_path: Path) -> None:
    specs = _specs(tmp_path, [f"m{i:02d}.dmp" for i in range(COUNT)])
    got = _run(specs, chunk_reporting)
    assert sorted(got) == sorted(s.source for s in specs)
    assert all(len(recs) == 1 for recs in got.values())
    assert {r[0].error_code for r in got.values()} == {"not_found"}
    sizes = {int(r[0].warnings[-1].split()[1]) for r in got.values()}
    assert max(sizes) == COUNT // 4
    # chunking off: one source per task
    got = _run(specs[:4], chunk_reporting, chunk_max=1)
    assert {r[0].warnings[-1] for r in got.values()} == {"chunk 1"}


def test_a_source_that_kills_its_worker_fails_alone(tmp_path: Path) -> None:
    names = [f"m{i:02d}.dmp" for i in range(COUNT)]
    names[6] = "die.dmp"
    got = _run(_specs(tmp_path, names), faulty)
    assert all(len(recs) == 1 for recs in got.values())
    codes = {Path(s).name: r[0].error_code for s, r in got.items()}
    assert codes.pop("die.dmp") == "worker_died"
    assert set(codes.values()) == {"not_found"}
    assert len(codes) == COUNT - 1


@pytest.mark.parametrize("at", [5, 1])
def test_a_hung_source_in_a_chunk_times_out_alone(tmp_path: Path, at: int) -> None:
    """One worker; at 1 the first chunk hangs while the next chunk waits in the pool's queue: that chunk's
    clock had not started, so it is run, not timed out, and only the hung source is failed."""
    names = [f"m{i:02d}.dmp" for i in range(COUNT)]
    names[at] = "hang.dmp"
    got = _run(_specs(tmp_path, names), faulty, task_timeout=2.0)
    assert all(len(recs) == 1 for recs in got.values())
    codes = {Path(s).name: r[0].error_code for s, r in got.items()}
    assert codes.pop("hang.dmp") == "task_timeout"
    assert set(codes.values()) == {"not_found"}
    assert len(codes) == COUNT - 1


def test_a_queued_chunk_is_not_a_suspect_when_a_worker_dies(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The worker dies on the first chunk's second source while the next chunk is queued: that source alone is
    re-run as the suspect (the queued chunk is simply queued again) and failed; every other source completes."""
    names = [f"m{i:02d}.dmp" for i in range(COUNT)]
    names[1] = "die.dmp"
    with caplog.at_level("WARNING", logger="dbgauto.batch.runner"):
        got = _run(_specs(tmp_path, names), faulty)
    codes = {Path(s).name: r[0].error_code for s, r in got.items()}
    assert codes.pop("die.dmp") == "worker_died"
    assert set(codes.values()) == {"not_found"}
    assert len(codes) == COUNT - 1
    deaths = [r.getMessage() for r in caplog.records if "worker process died" in r.getMessage()]
    assert deaths[0] == "a worker process died; 1 task(s) re-run one at a time to find which"  # not the queued


@pytest.fixture
def small_tree(tmp_path: Path, triage_x64_path: Path) -> Path:
    """Twelve links to the real small dump under six machine folders (enough sources for chunks of three)."""
    src = tmp_path / "src"
    for i in range(12):
        target = src / f"PC{i % 6}" / f"Mini{i:02d}.dmp"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(triage_x64_path, target)
    return src


def test_chunked_batch_reports_equal_the_catalog(small_tree: Path, tmp_path: Path, triage_x64_path: Path) -> None:
    """--jobs 1 over twelve small dumps (chunks of three): every report is published and its JSON is the facts
    the catalog recorded; the facts match the real dump's ground truth (../shared/groundtruth)."""
    out = tmp_path / "out"
    res = run_cli("batch", small_tree, "--out", out, "--jobs", "1", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["succeeded"] == 12
    assert not list(out.rglob("*.partial"))
    truth = json.loads((triage_x64_path.parent.parent / "groundtruth" / "triage_x64.json").read_text())
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        rows = cat.latest()
        assert len(rows) == 12
        for r in rows:
            paths = json.loads(r["report_paths"])
            assert set(paths) == {"html", "json"}
            html = cat.absolute(paths["html"]).read_text(encoding="utf-8")
            assert html.rstrip().endswith("</html>")
            report = json.loads(cat.absolute(paths["json"]).read_text(encoding="utf-8"))
            assert report == json.loads(r["facts"])
            drivers = [(d["path"], d["base"], d["size"]) for d in report["drivers"]]
            assert drivers == [(t["name"], t["base"], t["size"]) for t in truth["drivers"]["value"]]
            assert report["bugcheck"]["code"] == truth["bugcheck_code"]["value"]


def test_formats_none_records_facts_without_report_files(small_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = run_cli("batch", small_tree, "--out", out, "--formats", "none", "--json")
    assert res.returncode == 0, res.stderr
    assert not (out / "reports").exists()
    assert (out / "index.html").is_file()
    with Catalog.open(out / CATALOG_NAME, readonly=True) as cat:
        rows = cat.latest()
        assert len(rows) == 12
        assert all(r["status"] == "ok" and json.loads(r["report_paths"] or "{}") == {} for r in rows)
        facts = [json.loads(r["facts"]) for r in rows]
    assert {f["bugcheck"]["code"] for f in facts} == {"0x1000007e"}
    bad = run_cli("batch", small_tree, "--out", out, "--formats", "none,html")
    assert bad.returncode == 2
    assert "cannot be combined" in bad.stderr


def test_a_chunk_whose_reports_cannot_be_published_fails_its_records(tmp_path: Path, triage_x64_path: Path) -> None:
    """The chunk's durability point fails (a folder stands where a report goes): the records of that folder are
    failed (a transient os_error, retried by the next run), none names a report, no temp file is left."""
    reports = tmp_path / "reports"
    (reports / "b.html").mkdir(parents=True)  # os.replace of a file over a folder fails on every OS
    specs = []
    for name in ("a", "b"):
        src = tmp_path / f"{name}.dmp"
        os.link(triage_x64_path, src)
        specs.append(TaskSpec(str(src), src.stat().st_size, 0, report_dir=str(reports), extra={"report_name": name}))
    recs = tasks_module.run_tasks(specs)
    assert [r.status for r in recs] == ["failed", "failed"]
    assert {r.error_code for r in recs} == {"os_error"}
    assert all("reports not published" in (r.error_message or "") for r in recs)
    assert all(r.report_paths == {} for r in recs)
    assert not [p for p in reports.iterdir() if p.name.endswith(".partial")]


def test_tasks_in_threads_each_publish_their_own_reports(tmp_path: Path, triage_x64_path: Path) -> None:
    """A Dask worker runs tasks in threads of one process: each task is its own chunk (thread-local), so none
    is taken into another's chunk and every one's reports exist when it returns."""
    from concurrent.futures import ThreadPoolExecutor

    specs = []
    for i in range(4):
        src = tmp_path / f"t{i}.dmp"
        os.link(triage_x64_path, src)
        specs.append(TaskSpec(str(src), src.stat().st_size, 0, report_dir=str(tmp_path / "reports")))
    with ThreadPoolExecutor(max_workers=2) as pool:
        recs = list(pool.map(run_task, specs))
    assert [r.status for r in recs] == ["ok"] * 4
    for rec in recs:
        assert set(rec.report_paths) == {"html", "json"}
        assert all(Path(p).is_file() for p in rec.report_paths.values())
