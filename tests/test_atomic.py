"""atomic_write: all or nothing, no overwrite unless asked, ordinary permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dbgauto.errors import OutputExistsError
from dbgauto.util.atomic import atomic_write, atomic_write_bytes


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.dmp"

    def crash_mid_write() -> None:
        with atomic_write(target) as fh:
            fh.write(b"half")
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        crash_mid_write()
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    target = atomic_write_bytes(tmp_path / "a.txt", b"one", overwrite=False)
    with pytest.raises(OutputExistsError):
        atomic_write_bytes(target, b"two", overwrite=False)
    assert target.read_bytes() == b"one"
    atomic_write_bytes(target, b"two", overwrite=True)
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "r.html", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
