"""A function spawned workers can import (by module name) to report what they have loaded."""

from __future__ import annotations

import sys


def loaded(names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` this worker process has imported, without importing anything itself."""
    return [n for n in names if n in sys.modules]
