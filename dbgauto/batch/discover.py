"""Find kernel dumps under folders by their first 8 bytes (PAGEDUMP / PAGEDU64), never by extension.

Why by signature: crash folders hold ``MEMORY.DMP``, ``Mini112424-01.dmp``, renamed copies and archives
side by side; the extension says nothing. Skipped: our own in-progress temp files (``.*.partial``, see
dbgauto.util.atomic), the batch output folder when it sits under a source, directory symlinks and NTFS
junctions (both are reparse points; junctions are not symlinks to ``is_symlink`` before Python 3.12, so they
are recognised by their file attribute), and any folder already walked (same device and file id: a loop
through a mount point, a junction seen as a plain folder, a bind mount). At most :data:`MAX_FOLDERS`
folders are listed per source. A file named explicitly on the command line is always returned, dump or
not, so its failure is reported.

Seen but not processed (:class:`Skipped`, from :func:`scan`): a file older than ``--since``
(``older_than_since``; its signature is not read here: on a share of 100,000 old dumps that is 100,000 round
trips, and the coordinator reads it only for paths the catalog does not know yet), a ``*.dmp`` file without
a kernel-dump signature (``not_a_dump``: a user-mode minidump, an empty or half-written ``MEMORY.DMP``), and
a ``*.dmp`` file that cannot be read (``unreadable``). Other files without the signature are not dumps and
are not listed (a crash folder holds WER reports, logs, ...).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dbgauto.kdump.constants import SIGNATURE, VALID_DUMP32, VALID_DUMP64
from dbgauto.util.paths import canonical

__all__ = [
    "DUMP_NAME_SUFFIXES",
    "DUMP_SIGNATURES",
    "Discovery",
    "Found",
    "Skipped",
    "discover",
    "dump_signature_problem",
    "has_dump_signature",
    "is_temp_name",
    "iter_scan",
    "scan",
]

log = logging.getLogger(__name__)

DUMP_SIGNATURES = (SIGNATURE + VALID_DUMP32, SIGNATURE + VALID_DUMP64)  # the format layer's own
DUMP_NAME_SUFFIXES = (".dmp",)  # a file named like a dump is reported when it is not one (case-insensitive)

# What a file named like a dump holds instead (first bytes), said in words for the skipped row.
_OTHER_SIGNATURES = (
    (b"MDMP", "a user-mode minidump (MDMP), not a kernel dump"),
    (b"PAGE", "a kernel dump header with an unknown variant"),
    (b"MSCF", "a cabinet (.cab): extract the dump first"),
    (b"PK\x03\x04", "a zip archive: extract the dump first"),
)


@dataclass(frozen=True, slots=True)
class Found:
    """A candidate dump: resolved absolute path, size and mtime at discovery, and whether it was named."""

    path: Path
    size: int
    mtime_ns: int
    explicit: bool = False


def is_temp_name(name: str) -> bool:
    """Our atomic-write temp files: ``.<target>.<random>.partial``."""
    return name.startswith(".") and name.endswith(".partial")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file seen and not processed: ``reason`` is a code (module doc), ``message`` says it in words."""

    path: Path
    size: int
    mtime_ns: int
    reason: str
    message: str


@dataclass(slots=True)
class Discovery:
    """What :func:`scan` saw: dumps to consider, and files seen but not processed."""

    found: list[Found]
    skipped: list[Skipped]


def has_dump_signature(path: os.PathLike[str] | str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) in DUMP_SIGNATURES
    except OSError:
        return False


def dump_signature_problem(path: os.PathLike[str] | str) -> tuple[str, str] | None:
    """None for a kernel dump; else (reason code, message): ``not_a_dump`` (what it holds instead) or
    ``unreadable`` (the OS error)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        return "unreadable", f"cannot read: {exc.strerror or exc}"
    if head in DUMP_SIGNATURES:
        return None
    if not head:
        return "not_a_dump", "empty file (a dump still being written, or one that was never finished)"
    for magic, what in _OTHER_SIGNATURES:
        if head.startswith(magic):
            return "not_a_dump", what
    if not head.strip(b"\x00"):
        return "not_a_dump", "starts with zero bytes (a dump the crash did not finish writing?)"
    return "not_a_dump", f"no kernel dump signature (starts with {head!r})"


def _named_like_dump(name: str) -> bool:
    return name.lower().endswith(DUMP_NAME_SUFFIXES)


MAX_FOLDERS = 1_000_000
_FILE_ATTRIBUTE_REPARSE_POINT = 0x400


def is_link_dir(entry: os.DirEntry[str]) -> bool:
    """A directory symlink or an NTFS junction / mount point (any reparse point): never descended into."""
    if entry.is_symlink():
        return True
    is_junction = getattr(entry, "is_junction", None)  # Python 3.12+
    if is_junction is not None and is_junction():
        return True
    attrs = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)  # Windows only
    return bool(attrs & _FILE_ATTRIBUTE_REPARSE_POINT)


def descend(entry: os.DirEntry[str]) -> bool:
    """Walk into this entry? A real folder, not a link or junction (the seam the loop test replaces)."""
    return entry.is_dir(follow_symlinks=False) and not is_link_dir(entry)


def _folder_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if st.st_ino else None


def _walk(root: Path, exclude: tuple[Path, ...]) -> Iterator[os.DirEntry[str]]:
    stack = [root]
    seen: set[tuple[int, int]] = set()
    listed = 0
    while stack and listed < MAX_FOLDERS:
        folder = stack.pop()
        key = _folder_id(folder)
        if key is not None:
            if key in seen:
                log.warning("%s: already walked (a folder loop); skipped", folder)
                continue
            seen.add(key)
        listed += 1
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            continue
        subdirs = []
        for entry in entries:
            try:
                if descend(entry):
                    sub = Path(entry.path)
                    if sub.resolve() not in exclude:
                        subdirs.append(sub)
                elif entry.is_file(follow_symlinks=True) and not is_temp_name(entry.name):
                    yield entry
            except OSError as exc:
                log.warning("cannot stat %s: %s", entry.path, exc)
        stack.extend(reversed(subdirs))


def _key_path(path: Path) -> Path:
    """The path a dump is keyed by: resolved (a mapped or subst drive becomes the path behind it on Windows),
    without a ``\\\\?\\`` prefix (dbgauto.util.paths.canonical), so one file never gets two catalog keys."""
    return Path(canonical(path.resolve()))


def iter_scan(
    sources: Iterable[os.PathLike[str] | str],
    *,
    exclude: Iterable[os.PathLike[str] | str] = (),
    since: datetime | None = None,
) -> Iterator[Found | Skipped]:
    """Each dump (:class:`Found`) and each file seen but not processed (:class:`Skipped`) under ``sources``,
    in walk order (sorted per folder), each path once: what a batch consumes chunk by chunk, so its memory
    follows the chunk, not the 100,000 files of a share (only the set of path texts seen is kept).

    ``since``: only files modified at or after that time are dumps to consider; older ones are skipped.
    Raises ``FileNotFoundError`` for a source that does not exist (a usage error for the CLI).
    """
    excluded = tuple(Path(p).resolve() for p in exclude)
    since_ns = int(since.timestamp() * 1e9) if since is not None else None
    since_text = since.isoformat() if since is not None else ""
    seen: set[str] = set()
    folder_key: tuple[str, str] = ("", "")  # (folder as listed, its key path): files of a folder come together

    def too_old(path: Path, size: int, mtime_ns: int) -> Skipped | None:
        if since_ns is None or mtime_ns >= since_ns:
            return None
        when = datetime.fromtimestamp(mtime_ns / 1e9, UTC).isoformat(timespec="seconds")
        return Skipped(path, size, mtime_ns, "older_than_since", f"modified {when}, before --since {since_text}")

    for src in sources:
        root = Path(src)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder")
        if root.is_file():
            st = root.stat()
            path = _key_path(root)
            if str(path) in seen:
                continue
            seen.add(str(path))
            yield too_old(path, st.st_size, st.st_mtime_ns) or Found(path, st.st_size, st.st_mtime_ns, explicit=True)
            continue
        for entry in _walk(root, excluded):
            st = entry.stat(follow_symlinks=True)
            if entry.is_symlink():
                path = _key_path(Path(entry.path))
            else:  # resolve the folder once, not every file of it (a realpath is one lstat per component)
                folder = entry.path[: len(entry.path) - len(entry.name)]
                if folder_key[0] != folder:
                    folder_key = (folder, str(_key_path(Path(folder))))
                path = Path(folder_key[1], entry.name)
            key = str(path)
            if key in seen:
                continue
            old = too_old(path, st.st_size, st.st_mtime_ns)
            if old is not None:
                if _named_like_dump(entry.name):  # else: the coordinator would read its signature for nothing
                    seen.add(key)
                    yield old
                continue
            if _named_like_dump(entry.name):
                problem = dump_signature_problem(path)
                if problem is not None:
                    seen.add(key)
                    yield Skipped(path, st.st_size, st.st_mtime_ns, *problem)
                    continue
            elif not has_dump_signature(path):
                continue
            seen.add(key)
            yield Found(path, st.st_size, st.st_mtime_ns)


def scan(
    sources: Iterable[os.PathLike[str] | str],
    *,
    exclude: Iterable[os.PathLike[str] | str] = (),
    since: datetime | None = None,
) -> Discovery:
    """:func:`iter_scan` collected: the dumps sorted by path, the files seen but not processed sorted by path."""
    found: list[Found] = []
    skipped: list[Skipped] = []
    for item in iter_scan(sources, exclude=exclude, since=since):
        (found if isinstance(item, Found) else skipped).append(item)
    return Discovery(sorted(found, key=lambda f: str(f.path)), sorted(skipped, key=lambda f: str(f.path)))


def discover(
    sources: Iterable[os.PathLike[str] | str],
    *,
    exclude: Iterable[os.PathLike[str] | str] = (),
    since: datetime | None = None,
) -> list[Found]:
    """The dumps of :func:`scan` only."""
    return scan(sources, exclude=exclude, since=since).found
