"""Compiled report templates are kept in the user's cache folder (``templates/``) and loaded by the next
process instead of compiled again; an edited template is compiled again; a folder other users can write to
is never used (the cache holds code that is executed when loaded).

Expectations: the renders of the same facts with the cache switched off (``DBGAUTO_TEMPLATE_CACHE=0``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dbgauto.analysis.facts import CrashFacts
from dbgauto.report.render import TEMPLATE_CACHE_ENV, ReportRenderer
from dbgauto.util import fs


def _render(monkeypatch: pytest.MonkeyPatch, cache: Path | None, facts: CrashFacts, *dirs: Path) -> str:
    if cache is None:
        monkeypatch.setenv(TEMPLATE_CACHE_ENV, "0")
    else:
        monkeypatch.delenv(TEMPLATE_CACHE_ENV, raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
        monkeypatch.setenv("LOCALAPPDATA", str(cache))
    return ReportRenderer(dirs).render_dump(facts, "html")


def _cached(cache: Path) -> list[Path]:
    return sorted((cache / "dbgauto" / "templates").rglob("*.cache"))


def test_the_next_renderer_loads_what_the_first_compiled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, facts: CrashFacts
) -> None:
    want = _render(monkeypatch, None, facts)
    cache = tmp_path / "xdg"
    assert _render(monkeypatch, cache, facts) == want
    entries = _cached(cache)
    assert entries  # report.html (and what it extends) compiled into the cache
    stamps = {p: p.stat().st_mtime_ns for p in entries}
    assert _render(monkeypatch, cache, facts) == want  # a new environment: loaded, not compiled and written again
    assert {p: p.stat().st_mtime_ns for p in _cached(cache)} == stamps


def test_an_edited_template_is_compiled_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, facts: CrashFacts
) -> None:
    user = tmp_path / "templates"
    user.mkdir()
    (user / "report.html").write_text("first {{ facts.bugcheck.name }}\n", encoding="utf-8")
    cache = tmp_path / "xdg"
    assert _render(monkeypatch, cache, facts, user) == f"first {facts.bugcheck.name}\n"
    (user / "report.html").write_text("second {{ facts.bugcheck.name }}\n", encoding="utf-8")
    assert _render(monkeypatch, cache, facts, user) == f"second {facts.bugcheck.name}\n"


@pytest.mark.skipif(not fs.HAVE_GETEUID, reason="POSIX owner and modes (Windows side: tests/util/test_fs_portable.py)")
def test_a_cache_folder_others_can_write_to_is_not_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, facts: CrashFacts
) -> None:
    want = _render(monkeypatch, None, facts)
    cache = tmp_path / "xdg"
    _render(monkeypatch, cache, facts)
    folder = _cached(cache)[0].parent
    for p in _cached(cache):
        p.unlink()
    os.chmod(folder, 0o777)  # noqa: PTH101 - the mode is the point
    assert stat.S_IMODE(folder.stat().st_mode) & stat.S_IWOTH
    assert _render(monkeypatch, cache, facts) == want
    assert _cached(cache) == []  # neither read nor written
