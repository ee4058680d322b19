"""One batch task on a large dump opens it once, hashes it once and walks its kernel once (issue 10).

The task runs for real, in-process (converting, reporting and verifying); the counters wrap the real functions
and count only calls on the source dump (verification opens the small dump it wrote, which is another file).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from batchkit import inflated_dumps

import dbgauto.analysis.facts as facts_module
import dbgauto.batch.tasks as tasks_module
import dbgauto.kernel.walk as walk_module
from dbgauto.batch.tasks import TaskSpec, run_task
from dbgauto.catalog.summary import unpack_facts
from dbgauto.kdump.reader import KernelDump


@pytest.fixture(scope="module")
def large_dump(tmp_path_factory: pytest.TempPathFactory, triage_x64_path: Path) -> Path:
    return inflated_dumps(tmp_path_factory.mktemp("large"), triage_x64_path, count=2)[1]  # bitmap, encoded KDBG


def test_a_task_opens_hashes_and_walks_once(large_dump: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: Counter[str] = Counter()
    source = large_dump.resolve()

    real_open = KernelDump.open.__func__  # type: ignore[attr-defined]

    def counting_open(cls: type[KernelDump], path: Any) -> KernelDump:
        if Path(path).resolve() == source:
            calls["open"] += 1
        return real_open(cls, path)

    real_fingerprint = facts_module.fingerprint

    def counting_fingerprint(path: Any, size: int | None = None) -> str:
        if Path(path).resolve() == source:
            calls["hash"] += 1
        return real_fingerprint(path, size)

    real_walk = walk_module.walk_kernel

    def counting_walk(dump: KernelDump, **kwargs: Any) -> Any:
        if dump.path.resolve() == source:
            calls["walk"] += 1
        return real_walk(dump, **kwargs)

    monkeypatch.setattr(KernelDump, "open", classmethod(counting_open))
    monkeypatch.setattr(facts_module, "fingerprint", counting_fingerprint)
    monkeypatch.setattr(tasks_module, "fingerprint", counting_fingerprint)
    monkeypatch.setattr(walk_module, "walk_kernel", counting_walk)

    st = large_dump.stat()
    spec = TaskSpec(
        source=str(large_dump),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        small_path=str(tmp_path / "small.dmp"),
        report_dir=str(tmp_path / "reports"),
        formats=("json",),
        verify=True,
    )
    rec = run_task(spec)
    assert rec.status == "ok", rec.error_message
    assert rec.verified, rec.verify_note  # the small dump it wrote re-opens with the same facts
    assert rec.packed is not None
    assert rec.summary is not None
    facts = unpack_facts(rec.packed.facts_z, rec.packed.drivers_z)
    assert facts["drivers"]  # the facts came from the kernel walk, not from the header alone
    assert rec.summary.culprit == "amdppm.sys"
    assert dict(calls) == {"open": 1, "hash": 1, "walk": 1}
