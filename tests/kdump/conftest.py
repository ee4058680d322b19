"""Fixtures shared by the small-dump tests."""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbgauto.kdump.triage import TriageDump


@pytest.fixture(scope="module")
def tri(triage_x64_path: Path) -> Iterator[TriageDump]:
    """The real Windows-written small dump, parsed from a read-only mapping (one parse per test module)."""
    with open(triage_x64_path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        t = TriageDump.parse_buffer(mm, path=triage_x64_path, is_64bit=True)
        yield t
        del t  # drop the parse's views before the mapping closes
