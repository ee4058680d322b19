"""Windows path rules as pure functions: long paths, UNC, canonical keys, SQLite URIs, network folders.

Why pure functions with a ``windows`` switch: every rule is tested on Linux with ``PureWindowsPath``
strings, and the code that runs on Windows is the same code. ``windows=None`` means "this OS".

Catalog keys (what :func:`canonical` does): a dump is keyed by its resolved absolute path. On Windows
``Path.resolve()`` asks the OS for the final path (GetFinalPathNameByHandle), which turns a mapped drive
(``Z:\\dumps``) into its UNC path (``\\\\server\\share\\dumps``) and a subst drive into the folder behind it, so
the same share reached by another letter gets the same key. :func:`canonical` then drops the ``\\\\?\\`` and
``\\\\?\\UNC\\`` prefixes that some calls return, so keys never differ by prefix. Case is kept as the file
system reports it (NTFS is case-preserving; folding would split keys written by earlier versions).
"""

from __future__ import annotations

import ntpath
import os
from pathlib import Path, PurePath, PureWindowsPath
from typing import Final
from urllib.parse import quote

__all__ = [
    "MAX_PATH",
    "NETWORK_FS_TYPES",
    "canonical",
    "is_network_path",
    "is_unc",
    "long_path",
    "long_path_text",
    "mount_fs_type",
    "sqlite_uri",
    "strip_long_prefix",
]

MAX_PATH: Final = 260  # including the terminating NUL: 259 characters usable without the \\?\ prefix
_LONG: Final = "\\\\?\\"
_LONG_UNC: Final = "\\\\?\\UNC\\"
NETWORK_FS_TYPES: Final = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "fuse.sshfs", "ceph", "glusterfs", "davfs"}
)
DRIVE_REMOTE: Final = 4  # GetDriveTypeW


def _windows(windows: bool | None) -> bool:
    return os.name == "nt" if windows is None else windows


def strip_long_prefix(text: str) -> str:
    """``\\\\?\\UNC\\srv\\share\\x`` → ``\\\\srv\\share\\x``; ``\\\\?\\C:\\x`` → ``C:\\x``; anything else unchanged."""
    if text.startswith(_LONG_UNC):
        return "\\\\" + text[len(_LONG_UNC) :]
    if text.startswith(_LONG):
        return text[len(_LONG) :]
    return text


def is_unc(path: os.PathLike[str] | str) -> bool:
    """True for ``\\\\server\\share\\...`` (also with the long prefix, or written with forward slashes)."""
    text = strip_long_prefix(os.fspath(path)).replace("/", "\\")
    return text.startswith("\\\\") and not text.startswith("\\\\.\\")


def long_path_text(text: str, *, windows: bool | None = None) -> str:
    """``text`` with the ``\\\\?\\`` prefix when it is absolute, on Windows and near or beyond MAX_PATH.

    The prefix turns off Win32 path parsing (no ``..``, no ``/``), so the path is normalised first
    (``ntpath.normpath``, the same rules on any OS). 12 characters are kept free for a temp-file suffix.
    """
    if not _windows(windows) or len(text) < MAX_PATH - 12 or text.startswith(_LONG):
        return text
    if not PureWindowsPath(text).is_absolute():
        return text
    norm = ntpath.normpath(text)
    return _LONG_UNC + norm[2:] if norm.startswith("\\\\") else _LONG + norm


def long_path(path: Path, *, windows: bool | None = None) -> Path:
    """:func:`long_path_text` for a ``Path`` (unchanged on other OSes)."""
    text = os.fspath(path)
    out = long_path_text(text, windows=windows)
    return path if out == text else Path(out)


def canonical(path: os.PathLike[str] | str, *, windows: bool | None = None) -> str:
    """The stable key of an already resolved path: long prefixes dropped on Windows (see the module doc)."""
    text = os.fspath(path)
    return strip_long_prefix(text) if _windows(windows) else text


def sqlite_uri(path: os.PathLike[str] | str, *, mode: str = "ro", windows: bool | None = None) -> str:
    """A ``file:`` URI SQLite accepts for an absolute ``path``.

    SQLite allows only an empty or ``localhost`` authority, so ``Path.as_uri()`` of a UNC path
    (``file://server/share/x``) is refused; the UNC form is ``file:////server/share/x`` (empty authority,
    path ``//server/share/x``) and a drive path is ``file:///C:/x`` (SQLite drops the slash before the
    drive letter on Windows). ``?``, ``#`` and ``%`` in names are percent-encoded.
    """
    if _windows(windows):
        text = strip_long_prefix(str(PureWindowsPath(os.fspath(path)))).replace("\\", "/")
        if not (text.startswith("//") or (len(text) > 2 and text[1] == ":")):
            raise ValueError(f"{path}: a SQLite URI needs an absolute path")
        body = "//" + text if text.startswith("//") else "///" + text
    else:
        text = os.fspath(path)
        if not text.startswith("/"):
            raise ValueError(f"{path}: a SQLite URI needs an absolute path")
        body = "//" + text
    return "file:" + quote(body, safe="/:") + (f"?mode={mode}" if mode else "")


def mount_fs_type(path: os.PathLike[str] | str, mounts: str | None = None) -> str | None:
    """The file-system type of the mount holding ``path`` (Linux /proc/self/mounts); None when unknown."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = os.fspath(path)
    best, best_type = "", None
    for line in mounts.splitlines()[:100_000]:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, fields[2]
    return best_type


def _drive_type(root: str) -> int:
    import ctypes

    return int(ctypes.windll.kernel32.GetDriveTypeW(root))  # type: ignore[attr-defined]


def is_network_path(
    path: os.PathLike[str] | str,
    *,
    windows: bool | None = None,
    mounts: str | None = None,
    drive_type: object = None,
) -> bool:
    """True when ``path`` lives on a network file system (SMB/NFS...), where SQLite's WAL mode cannot work.

    Windows: a UNC path, or a drive letter whose GetDriveTypeW is DRIVE_REMOTE (``drive_type`` is the seam).
    Elsewhere: the mount's type from /proc/self/mounts (``mounts`` is the seam). Unknown means local.
    """
    if _windows(windows):
        if is_unc(path):
            return True
        drive = PureWindowsPath(os.fspath(path)).drive
        if not drive:
            return False
        get = drive_type if callable(drive_type) else _drive_type
        try:
            return int(get(drive + "\\")) == DRIVE_REMOTE
        except (OSError, AttributeError, ValueError):
            return False
    fstype = mount_fs_type(path, mounts)
    return fstype is not None and (fstype in NETWORK_FS_TYPES or fstype.startswith("nfs"))


def as_pure(path: os.PathLike[str] | str, *, windows: bool | None = None) -> PurePath:
    """``path`` as the pure path class of the OS it is judged for."""
    return PureWindowsPath(os.fspath(path)) if _windows(windows) else PurePath(os.fspath(path))
