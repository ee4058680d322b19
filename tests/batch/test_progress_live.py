"""A real batch on the local pool (spawn, as on Windows) reports each running dump's live stage to the progress
view; a worker that hangs is still killed by the task timeout, with the stage it reached shown meanwhile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dbgauto.batch.coordinator import BatchOptions, run_batch
from dbgauto.batch.progress import LogProgress, row_label
from dbgauto.batch.runner import START_METHOD_ENV
from dbgauto.batch.tasks import FAULT_ENV, TaskSpec


class Recording(LogProgress):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []

    def stage(self, spec: TaskSpec, name: str) -> None:
        self.rows.append(row_label(spec, name))


def test_live_stage_from_a_real_pool(triage_x64_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    for host, name in (("hostA", "MEMORY.DMP"), ("hostB", "slow.dmp")):
        (src / host).mkdir(parents=True)
        shutil.copyfile(triage_x64_path, src / host / name)
    monkeypatch.setenv(START_METHOD_ENV, "spawn")  # workers start from this environment, fault included
    monkeypatch.setenv(FAULT_ENV, "hang:slow.dmp")
    progress = Recording()
    summary = run_batch(
        BatchOptions(sources=[str(src)], out_dir=str(tmp_path / "out"), jobs=2, task_timeout=6.0, formats=("json",)),
        progress,
    )
    assert summary.exit_code == 1  # the hung dump failed (timed out); the batch finished
    assert "  hostB/slow.dmp: hash (hash, convert, report)" in progress.rows
