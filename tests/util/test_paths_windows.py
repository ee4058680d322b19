"""Hazard groups 4 and 9: SQLite URIs from UNC and drive paths, network folders, long paths, canonical keys.

Windows path strings are judged with ``windows=True`` (pure functions, PureWindowsPath/ntpath rules). URI
expectations come from SQLite's URI documentation (https://sqlite.org/uri.html): the authority must be empty
or ``localhost``; a UNC path is written ``file:////server/share/...``; ``?``, ``#`` and ``%`` are escaped.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path, PureWindowsPath

import pytest

from dbgauto.catalog.db import Catalog
from dbgauto.errors import CatalogError
from dbgauto.util import paths

MOUNTS = """\
sysfs /sys sysfs rw,nosuid 0 0
/dev/sda1 / ext4 rw,relatime 0 0
//filer/crashes /mnt/crashes cifs rw,vers=3.1.1 0 0
filer:/export/dumps /mnt/nfs nfs4 rw 0 0
/dev/sdb1 /mnt/crashes/local ext4 rw 0 0
/dev/sdc1 /mnt/with\\040space xfs rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        (r"\\filer\crashes\out\dbgauto.sqlite", "file:////filer/crashes/out/dbgauto.sqlite?mode=ro"),
        (r"\\?\UNC\filer\crashes\out\dbgauto.sqlite", "file:////filer/crashes/out/dbgauto.sqlite?mode=ro"),
        (r"C:\Crash Reports\out\dbgauto.sqlite", "file:///C:/Crash%20Reports/out/dbgauto.sqlite?mode=ro"),
        (r"\\?\D:\o#1\a?b%.sqlite", "file:///D:/o%231/a%3Fb%25.sqlite?mode=ro"),
    ],
)
def test_sqlite_uri_windows_forms(path: str, uri: str) -> None:
    assert paths.sqlite_uri(path, windows=True) == uri


def test_as_uri_of_a_unc_path_is_what_sqlite_refuses() -> None:
    # the bug this replaces: Path.as_uri() puts the server in the authority
    assert PureWindowsPath(r"\\filer\crashes\x.sqlite").as_uri() == "file://filer/crashes/x.sqlite"
    with pytest.raises(sqlite3.OperationalError, match="authority"):
        sqlite3.connect("file://filer/crashes/x.sqlite?mode=ro", uri=True)


def test_the_unc_uri_shape_is_accepted_by_real_sqlite(tmp_path: Path) -> None:
    # file:////... (empty authority, path starting with //) is valid for SQLite; on POSIX //tmp/x is /tmp/x,
    # so the very URI shape used for UNC paths opens a real database here
    db = tmp_path / "odd #?% name.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t(x)")
    conn.close()
    uri = paths.sqlite_uri(db, windows=False)
    assert uri.startswith("file:///")
    double = uri.replace("file:///", "file:////", 1)
    for u in (uri, double):
        ro = sqlite3.connect(u, uri=True)
        assert ro.execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ro.execute("CREATE TABLE u(y)")
        ro.close()
    with pytest.raises(ValueError):
        paths.sqlite_uri("relative.sqlite", windows=False)


def test_network_detection_windows_and_linux() -> None:
    assert paths.is_network_path(r"\\filer\crashes\out", windows=True)
    assert paths.is_network_path("//filer/crashes/out", windows=True)
    assert not paths.is_network_path(r"\\.\pipe\x", windows=True)
    remote = {"Z:\\": 4, "C:\\": 3}  # GetDriveTypeW: DRIVE_REMOTE 4, DRIVE_FIXED 3
    assert paths.is_network_path(r"Z:\out", windows=True, drive_type=remote.__getitem__)
    assert not paths.is_network_path(r"C:\out", windows=True, drive_type=remote.__getitem__)
    assert paths.is_network_path("/mnt/crashes/out", windows=False, mounts=MOUNTS)
    assert paths.is_network_path("/mnt/nfs/x/y", windows=False, mounts=MOUNTS)
    assert not paths.is_network_path("/mnt/crashes/local/out", windows=False, mounts=MOUNTS)  # longest mount wins
    assert not paths.is_network_path("/mnt/crashesX", windows=False, mounts=MOUNTS)
    assert paths.mount_fs_type("/mnt/with space/a", MOUNTS) == "xfs"
    assert not paths.is_network_path("/home/u", windows=False, mounts=MOUNTS)


def test_catalog_on_a_network_folder_uses_the_rollback_journal(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "net" / "dbgauto.sqlite", network=True) as cat:
        assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        with Catalog.open(cat.path, readonly=True) as reader:  # a reader beside the writer still works
            assert reader.user_version == cat.user_version
    assert not (tmp_path / "net" / "dbgauto.sqlite-wal").exists()
    with Catalog.open(tmp_path / "local" / "dbgauto.sqlite") as cat:  # detected: a local disk keeps WAL
        assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_catalog_refuses_clearly_when_the_journal_mode_cannot_change(tmp_path: Path) -> None:
    db = tmp_path / "dbgauto.sqlite"
    with Catalog.open(db):
        pass
    holder = sqlite3.connect(db)  # another process has the WAL catalog open: it cannot switch modes now
    holder.execute("BEGIN")
    holder.execute("SELECT * FROM sqlite_master").fetchall()
    try:
        with pytest.raises(CatalogError, match=r"dbgauto.sqlite: SQLite cannot use journal mode DELETE"):
            Catalog.open(db, network=True)
    finally:
        holder.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C:\\" + "d\\" * 130 + "x.html", "\\\\?\\C:\\" + "d\\" * 130 + "x.html"),
        ("\\\\srv\\share\\" + "d\\" * 130 + "x", "\\\\?\\UNC\\srv\\share\\" + "d\\" * 130 + "x"),
        ("C:\\a\\..\\" + "d\\" * 130 + "x", "\\\\?\\C:\\" + "d\\" * 130 + "x"),  # normalised: \\?\ turns parsing off
        ("C:/" + "d/" * 130 + "x", "\\\\?\\C:\\" + "d\\" * 130 + "x"),
        ("C:\\short\\x.html", "C:\\short\\x.html"),
        ("rel\\" * 100, "rel\\" * 100),  # relative: left alone
        ("\\\\?\\C:\\" + "d\\" * 130, "\\\\?\\C:\\" + "d\\" * 130),
    ],
)
def test_long_paths(text: str, expected: str) -> None:
    assert paths.long_path_text(text, windows=True) == expected
    assert paths.long_path_text(text, windows=False) == text


def test_canonical_keys_drop_long_prefixes_only_on_windows() -> None:
    assert paths.canonical(r"\\?\UNC\filer\crashes\MEMORY.DMP", windows=True) == r"\\filer\crashes\MEMORY.DMP"
    assert paths.canonical(r"\\?\C:\Dumps\MEMORY.DMP", windows=True) == r"C:\Dumps\MEMORY.DMP"
    assert paths.canonical(r"\\filer\crashes\MEMORY.DMP", windows=True) == r"\\filer\crashes\MEMORY.DMP"
    assert paths.canonical("/srv/x", windows=False) == "/srv/x"
    assert paths.is_unc(r"\\?\UNC\filer\s\x")
    assert not paths.is_unc(r"C:\x")
    assert not paths.is_unc("/x")
