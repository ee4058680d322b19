"""Fixtures for the symbol tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from symserver import ServedTree, serve


@pytest.fixture
def served() -> Iterator[tuple[str, ServedTree]]:
    with serve() as s:
        yield s
