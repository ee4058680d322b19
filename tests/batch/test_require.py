"""A batch fails up front, once, when a part its workers need is missing (not once per dump)."""

from __future__ import annotations

import sys

import pytest

from dbgauto.batch.coordinator import _require
from dbgauto.errors import DbgautoError


def test_a_missing_part_fails_the_batch_before_any_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    _require(convert=True, report=True)  # this installation has everything
    _require(convert=False, report=False)
    monkeypatch.setitem(sys.modules, "dbgauto.engines.jobs", None)  # what the import system reads as "absent"
    with pytest.raises(DbgautoError, match=r"dbgauto\.engines\.jobs is not available"):
        _require(convert=False, report=True)
    with pytest.raises(DbgautoError, match=r"dbgauto\.engines\.jobs is not available"):
        _require(convert=True, report=False)
    _require(convert=False, report=False)  # a header-only catalog run does not need the engines


def test_a_missing_report_library_fails_the_batch_before_any_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "dbgauto.report.render" or m.startswith("jinja2")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "jinja2", None)  # importing it raises ImportError, as when not installed
    with pytest.raises(DbgautoError, match=r"dbgauto\.report\.render is not available.*jinja2"):
        _require(convert=True, report=True)
