"""Report sets are published together: temp files, one fsync pass, renames; nothing half-done on failure."""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from dbgauto.analysis.facts import CrashFacts
from dbgauto.errors import TemplateError
from dbgauto.report.names import report_stem
from dbgauto.report.outputs import OutputSet
from dbgauto.report.render import ReportRenderer
from dbgauto.util.atomic import atomic_write_bytes


def test_files_appear_only_on_commit(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with OutputSet(out) as batch:
        a = batch.add("a.html", b"A")
        batch.add("b.json", b"B")
        assert not a.exists()
        assert len(list(out.iterdir())) == 2  # the two temp files, hidden names
        assert all(p.name.startswith(".") and p.name.endswith(".partial") for p in out.iterdir())
    assert sorted(p.name for p in out.iterdir()) == ["a.html", "b.json"]
    assert a.read_bytes() == b"A"


def test_an_error_publishes_nothing_and_leaves_no_temp(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.html").write_bytes(b"old")

    def failing_render() -> None:
        with OutputSet(out) as batch:
            batch.add("a.html", b"new")
            raise RuntimeError("render failed")

    with pytest.raises(RuntimeError):
        failing_render()
    assert [p.name for p in out.iterdir()] == ["a.html"]
    assert (out / "a.html").read_bytes() == b"old"


def test_names_cannot_leave_the_folder(tmp_path: Path) -> None:
    with OutputSet(tmp_path) as batch, pytest.raises(ValueError, match="escapes"):
        batch.add("../x.html", b"x")


def test_report_set_formats_index_and_csv(tmp_path: Path, make_facts: Callable[..., CrashFacts]) -> None:
    items = [make_facts(i) for i in range(5)]
    written = ReportRenderer().write_report_set(items, tmp_path, ("html", "json", "md", "csv"))
    names = {p.name for p in written}
    assert names == {p.name for p in tmp_path.iterdir()}
    for f in items:
        assert {f"{report_stem(f)}.{ext}" for ext in ("html", "json", "md")} <= names
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{report_stem(f)}.html"' in index for f in items)
    rows = list(csv.DictReader((tmp_path / "report.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == 5


def test_report_set_template_error_publishes_nothing(tmp_path: Path, make_facts: Callable[..., CrashFacts]) -> None:
    user = tmp_path / "tpl"
    user.mkdir()
    (user / "index.html").write_text("{{ rows.nope }}", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(TemplateError):
        ReportRenderer([user]).write_report_set([make_facts(0), make_facts(1)], out, ("html", "json"))
    assert list(out.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_published_files_get_the_umask_mode_like_atomic_write(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with OutputSet(tmp_path / "set") as batch:
            published = batch.add("a.html", b"A")
        atomic_write_bytes(tmp_path / "single.html", b"A")
    finally:
        os.umask(old)
    assert stat.S_IMODE(published.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert stat.S_IMODE(published.stat().st_mode) == stat.S_IMODE((tmp_path / "single.html").stat().st_mode)


def test_early_sync_and_rollback_publish_only_what_stays(tmp_path: Path) -> None:
    """A batch worker's chunk: files fsynced by the helper thread as they come, one dump's files rolled back;
    nothing is visible before commit, and only the kept files are published (no temp left)."""
    out = tmp_path / "out"
    with OutputSet(out, sync_early=True) as batch:
        batch.add("a.html", b"A")
        mark = batch.mark()
        batch.add("b.html", b"B")
        batch.add("b.json", b"{}")
        batch.rollback(mark)
        batch.add("c.json", b"[]")
        assert len(batch) == 2
        assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == []
    assert sorted(p.name for p in out.iterdir()) == ["a.html", "c.json"]
    assert (out / "c.json").read_bytes() == b"[]"
