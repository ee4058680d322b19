"""``report`` and ``batch`` name one dump's files the same way (issue 14): one stem rule, from the source path."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dbgauto.batch.coordinator import output_key
from dbgauto.engines.jobs import facts_from_dump
from dbgauto.report.names import report_stem


def test_report_and_batch_share_the_stem(triage_x64_path: Path) -> None:
    facts = facts_from_dump(triage_x64_path)
    expected = "triage_x64-" + hashlib.sha1(str(triage_x64_path.absolute()).encode()).hexdigest()[:8]
    assert report_stem(facts) == output_key(triage_x64_path) == expected


def test_two_memory_dmp_files_get_different_stems(tmp_path: Path) -> None:
    a, b = tmp_path / "hostA" / "MEMORY.DMP", tmp_path / "hostB" / "MEMORY.DMP"
    assert output_key(a) != output_key(b)
    assert output_key(a).startswith("MEMORY-")
