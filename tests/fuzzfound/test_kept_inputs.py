"""Every input a fuzz target ever failed on (``tests/fuzzfound/inputs/<target>/``), run through that target's
body exactly as the fuzzer runs it (fuzz/targets/*.py; atheris not needed): only typed errors may come out, and
the debugger-text target also bounds the time per input."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ROOT / "fuzz" / "targets"
INPUTS = Path(__file__).resolve().parent / "inputs"


def _target(name: str) -> ModuleType:
    sys.path.insert(0, str(TARGETS))
    spec = importlib.util.spec_from_file_location(f"fuzz_target_{name}", TARGETS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = sorted((p.parent.name, p) for p in INPUTS.glob("*/*") if p.is_file())


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{t}/{p.name}" for t, p in CASES])
def test_kept_input(target: str, path: Path) -> None:
    module = _target(target)
    from common import check  # fuzz/targets/common.py, on the path once a target is loaded

    check(module.body, path.read_bytes())
