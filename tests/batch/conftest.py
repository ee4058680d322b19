"""Fixtures for the batch tests; the helpers live in batchkit.py (a unique module name, unlike `conftest`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from batchkit import DumpTree, make_full_tree, make_synth_tree


@pytest.fixture
def synth_tree(tmp_path: Path) -> DumpTree:
    return make_synth_tree(tmp_path / "src")


@pytest.fixture
def full_tree(tmp_path: Path, triage_x64_path: Path) -> DumpTree:
    return make_full_tree(tmp_path / "src", triage_x64_path)
