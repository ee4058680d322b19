"""Hazard groups 1, 2 and 10: portable reads, durability, renames over held files, modes without the umask.

Both sides of each seam run here: positional reads with and without ``os.pread``; ``PermissionError`` is what
Windows raises for a sharing violation (another program holds the file), stood in through ``fs.replace_op``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dbgauto.errors import DbgautoError, OutputBusyError
from dbgauto.report.outputs import OutputSet
from dbgauto.util import fs
from dbgauto.util.atomic import atomic_write_bytes, default_file_mode

SIMULATED = os.environ.get("DBGAUTO_SIMULATE_WINDOWS") == "1"


def test_simulation_really_removes_the_posix_calls() -> None:
    if not SIMULATED:
        pytest.skip("only under DBGAUTO_SIMULATE_WINDOWS=1 (the .ci/run job)")
    import signal

    assert not hasattr(os, "pread")
    assert not hasattr(os, "posix_fadvise")
    assert not hasattr(os, "killpg")
    assert not hasattr(signal, "SIGKILL")
    assert not hasattr(os, "setsid")
    with pytest.raises(ImportError):
        import fcntl  # noqa: F401
    assert fs.HAVE_PREAD is False
    assert fs.HAVE_FADVISE is False
    assert not hasattr(os, "geteuid")
    assert fs.HAVE_GETEUID is False


@pytest.mark.parametrize("use_pread", [True, False])
def test_positional_reads_both_sides_agree_with_the_file(tmp_path: Path, use_pread: bool) -> None:
    data = os.urandom(3 * 4096 + 17)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    with fs.PositionalFile(path, use_pread=use_pread) as f:
        f.advise_random()
        f.advise_willneed(4096, 4096)
        got: list[bytes] = []

        def worker(i: int) -> None:  # threads share the descriptor: the seek+read side holds a lock
            for k in range(200):
                pos = (i * 977 + k * 131) % len(data)
                got.append(bytes([f.read_at(pos, 5) == data[pos : pos + 5]]))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == [b"\x01"] * 800
        assert f.read_at(len(data) - 3, 100) == data[-3:]  # short read at the end
        assert f.read_at(len(data) + 10, 4) == b""
    assert f.closed
    with pytest.raises(ValueError, match="closed"):
        f.read_at(0, 1)


def _umask_now() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    pytest.skip("no /proc/self/status Umask line")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_temp_files_get_the_umask_mode_without_touching_the_umask(tmp_path: Path) -> None:
    # a child with umask 027 writes through atomic_write and OutputSet; its umask is read from /proc before and after
    code = (
        "import os, sys; os.umask(0o027)\n"
        "from pathlib import Path\n"
        "from dbgauto.util.atomic import atomic_write_bytes, default_file_mode\n"
        "from dbgauto.report.outputs import OutputSet\n"
        "def umask():\n"
        "    return [l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('Umask:')][0]\n"
        "before = umask(); d = Path(sys.argv[1])\n"
        "atomic_write_bytes(d / 'a.bin', b'x')\n"
        "with OutputSet(d) as s: s.add('b.html', b'y')\n"
        "print(before, umask(), oct(default_file_mode()), oct(os.stat(d/'a.bin').st_mode & 0o777),"
        " oct(os.stat(d/'b.html').st_mode & 0o777))\n"
    )
    _umask_now()
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    before, before_v, after, after_v, mode, a_mode, b_mode = out.stdout.split()
    assert (before, before_v) == (after, after_v) == ("Umask:", "0027")
    assert mode == a_mode == b_mode == "0o640"  # 0o666 & ~0o027, as open(path, "w") would give


def test_default_file_mode_matches_a_plain_open(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert default_file_mode() == stat.S_IMODE(plain.stat().st_mode)


def test_fsync_path_opens_for_writing(tmp_path: Path) -> None:
    # FlushFileBuffers needs a handle with write access; POSIX fsync accepts either, so the mode is the check
    target = tmp_path / "f"
    target.write_bytes(b"abc")
    opened: list[int] = []
    real_open = os.open

    def spy(path: object, flags: int, *args: object) -> int:
        opened.append(flags)
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "open", spy)
        fs.fsync_path(target)
    assert opened
    assert opened[0] & (os.O_RDWR | os.O_WRONLY | os.O_RDONLY) == os.O_RDWR


class Busy:
    """Stands in for a program holding a file open: PermissionError for the first ``times`` calls."""

    def __init__(self, real: object, times: int) -> None:
        self.real, self.times, self.calls = real, times, 0

    def __call__(self, *args: object) -> None:
        self.calls += 1
        if self.calls <= self.times:
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        self.real(*args)  # type: ignore[operator]


def test_replace_retries_a_held_target_then_succeeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    busy = Busy(os.replace, 3)
    monkeypatch.setattr(fs, "replace_op", busy)
    monkeypatch.setattr(fs, "busy_sleep", sleeps.append)
    target = atomic_write_bytes(tmp_path / "report.html", b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sleeps == [0.05, 0.1, 0.2]  # doubling backoff
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_replace_gives_up_with_a_typed_error_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs, "replace_op", Busy(os.replace, 10**6))
    monkeypatch.setattr(fs, "busy_sleep", lambda s: None)
    target = tmp_path / "index.csv"
    target.write_bytes(b"held by Excel")
    with pytest.raises(OutputBusyError) as info:
        atomic_write_bytes(target, b"new")
    err = info.value
    assert isinstance(err, DbgautoError)
    assert err.path == target
    assert err.attempts == fs.BUSY_ATTEMPTS
    assert str(target) in str(err)
    assert "another program holds the file open" in str(err)
    assert target.read_bytes() == b"held by Excel"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.csv"]  # no .partial left


def test_output_set_commit_busy_leaves_no_partials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs, "busy_sleep", lambda s: None)
    (tmp_path / "b.html").write_bytes(b"open in a browser")
    real = os.replace

    def held_b(src: object, dst: object) -> None:
        if Path(str(dst)).name == "b.html":
            raise PermissionError(13, "sharing violation")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(fs, "replace_op", held_b)
    out = OutputSet(tmp_path).__enter__()
    out.add("a.html", b"A")
    out.add("b.html", b"B")
    with pytest.raises(OutputBusyError, match=r"b\.html"):
        out.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "b.html"]
    assert (tmp_path / "b.html").read_bytes() == b"open in a browser"


def test_unlink_retries_then_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs, "busy_sleep", lambda s: None)
    f = tmp_path / "MEMORY.DMP"
    f.write_bytes(b"x")
    monkeypatch.setattr(fs, "unlink_op", Busy(os.unlink, 2))
    fs.unlink(f)
    assert not f.exists()
    fs.unlink(f, missing_ok=True)
    with pytest.raises(FileNotFoundError):
        fs.unlink(f)
    f.write_bytes(b"x")
    monkeypatch.setattr(fs, "unlink_op", Busy(os.unlink, 100))
    with pytest.raises(OutputBusyError, match="cannot delete"):
        fs.unlink(f, attempts=3)
    assert f.exists()


def _open_to_all(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o777)  # noqa: PTH101 - the mode is the point
    return folder


@pytest.mark.skipif(not fs.HAVE_GETEUID, reason="POSIX side of the seam (owner id and mode bits)")
def test_others_can_write_a_folder_open_to_all_but_not_a_private_one(tmp_path: Path) -> None:
    from dbgauto.util.usercache import private_dir

    mine = private_dir(tmp_path / "mine")
    assert mine is not None
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
    assert fs.others_can_write(mine.stat()) is False
    shared = _open_to_all(tmp_path)
    assert fs.others_can_write(shared.stat()) is True
    assert private_dir(shared) is None


def test_without_an_owner_id_a_per_user_folder_is_used_as_it_is(tmp_path: Path) -> None:
    """The Windows side (no ``os.geteuid``; %LOCALAPPDATA% carries the user's own ACL), run by the
    POSIX-removed job."""
    if fs.HAVE_GETEUID:
        pytest.skip("only without os.geteuid (DBGAUTO_SIMULATE_WINDOWS=1, or Windows)")
    from dbgauto.util.usercache import private_dir

    shared = _open_to_all(tmp_path)
    assert fs.others_can_write(shared.stat()) is False
    assert private_dir(shared) == shared

