"""Hazard group 3: a dump is unmapped when it is closed, so Windows can rename or delete it afterwards.

Windows refuses to delete or rename a mapped file; a mapping left to the garbage collector breaks temp-folder
cleanup and ``--delete-source-after-verify``. Linux allows both while mapped, so the test checks the mapping
itself (``mmap.closed``), with the garbage collector switched off so nothing is freed by luck.
"""

from __future__ import annotations

import gc
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbgauto.engines.native import NativeEngine
from dbgauto.kdump.reader import KernelDump


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def dump_copy(triage_x64_path: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "MEMORY.DMP"
    shutil.copyfile(triage_x64_path, dst)
    return dst


class _Node:
    def __init__(self) -> None:
        self.me = self
        self.view: memoryview | None = None


def test_views_held_by_cycles_do_not_keep_the_file_mapped(dump_copy: Path, no_gc: None) -> None:
    d = KernelDump.open(dump_copy)
    mm = d._mmap
    node = _Node()  # a reference cycle holding a view (parsed parts and tracebacks make such cycles)
    node.view = d.buffer[0x20:0x40]
    del node
    d.close()
    assert mm is not None
    assert mm.closed
    assert not d.mapped
    dump_copy.rename(dump_copy.with_suffix(".done"))


def test_a_view_a_caller_still_holds_is_reported_then_released(
    dump_copy: Path, no_gc: None, caplog: pytest.LogCaptureFixture
) -> None:
    d = KernelDump.open(dump_copy)
    view = d.buffer[:8]
    with caplog.at_level(logging.WARNING, logger="dbgauto.kdump.reader"):
        d.close()
    assert d.mapped
    assert str(dump_copy) in caplog.text
    assert "stays mapped" in caplog.text
    assert bytes(view) == b"PAGEDU64"  # the caller's view is still valid: nothing was pulled from under it
    view.release()
    d.close()  # a second close unmaps once the view is gone
    assert not d.mapped


def test_a_native_session_unmaps_its_dump_on_close(dump_copy: Path, no_gc: None) -> None:
    session = NativeEngine().open(dump_copy)
    session.run("lm")
    session.run("k")
    dump = session._dump  # type: ignore[attr-defined]
    session.close()
    assert not dump.mapped
    dump_copy.unlink()
