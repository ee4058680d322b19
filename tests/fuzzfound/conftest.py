"""Regression inputs for what fuzzing found: the handmade small dump (tests/kdump) is the base for dump cases."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kdump"))
