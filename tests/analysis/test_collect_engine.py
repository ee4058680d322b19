"""Facts through an engine session: the commands' text parsed like a saved log (native engine's emulation here).

cdb and DbgEng need Windows; on other hosts asking for them is a typed EngineUnavailableError.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from dbgauto.analysis.collect import ENGINE_COMMANDS, facts_from_dump, facts_from_engine
from dbgauto.errors import EngineError


def test_native_engine_session_facts(triage_x64_path: Path, groundtruth_x64: dict[str, Any]) -> None:
    facts = facts_from_engine(triage_x64_path, "native")
    assert facts.engine == "native"
    assert facts.engine_version is not None
    assert list(facts.raw_output) == list(ENGINE_COMMANDS)
    assert facts.bugcheck is not None
    assert facts.bugcheck.code == int(groundtruth_x64["bugcheck_code"], 16)
    assert [p.value for p in facts.bugcheck.parameters] == [int(p, 16) for p in groundtruth_x64["bugcheck_parameters"]]
    assert facts.culprit is not None
    assert facts.culprit.name.lower().startswith("amdppm")
    amdppm = next(d for d in groundtruth_x64["drivers"] if d["name"].endswith("amdppm.sys"))
    assert facts.culprit.base == int(amdppm["base"], 16)
    assert facts.os_build == groundtruth_x64["minor_version_build"]
    assert facts.stack is not None
    assert facts.stack.kind == "symbolic"
    assert len(facts.drivers) >= 150  # lm lists every loaded module
    assert facts.dump_type == 4  # filled from the file's own header
    native = facts_from_dump(triage_x64_path)
    stems = {d.name.lower().rsplit(".", 1)[0] for d in native.drivers if d.third_party}
    assert {d.name.lower() for d in facts.drivers if d.third_party} == stems  # same heuristic on lm names


@pytest.mark.skipif(sys.platform == "win32", reason="on Windows cdb/DbgEng may really be installed")
@pytest.mark.parametrize("engine", ["cdb", "dbgeng"])
def test_windows_engines_are_unavailable_here(triage_x64_path: Path, engine: str) -> None:
    with pytest.raises(EngineError):
        facts_from_dump(triage_x64_path, engine=engine)
