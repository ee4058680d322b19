"""Batch test helpers (used by the tests and conftest.py): generated dump folders and a CLI runner.

The dumps are written at test time by dbgauto_testkit (independent of dbgauto): synthetic kernel worlds from
dumpinflate.kworld (64- and 32-bit, convertible, each with a known culprit), bare dumpsynth dumps (headers and
a page: catalog-only runs), and large dumps inflated from the real small dump by dumpinflate.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from dbgauto_testkit import dumpinflate, dumpsynth

REPO = Path(__file__).resolve().parents[2]

# (relative path, arch, DumpType, bugcheck, culprit driver): synthetic kernel worlds, convertible;
# names deliberately not all ".dmp" (discovery is by signature)
SYNTH_VARIETIES = (
    ("a/kernel64.dmp", "x64", 6, 0xD1, "vendornet.sys"),
    ("a/complete64.bin", "x64", 1, 0x50, "acmefilt.sys"),
    ("b/active_pae.dmp", "x86pae", 5, 0x7E, "fastdisk.sys"),
    ("b/deeper/full32", "x86", 1, 0x0A, "crashy.sys"),
)
# the 32-bit worlds beside the dumps inflated from the real small dump (under large/: converted)
KWORLD_32_VARIETIES = (
    ("large/worlds32/MEMORY.DMP", "x86pae", 1, 0x7E, "gpuhelper.sys"),
    ("large/worlds32-nopae/active.dmp", "x86", 5, 0x3B, "crashy.sys"),
)


@dataclass(frozen=True)
class Expected:
    """What a synthetic kernel world's facts must say (from the world the generator built)."""

    bugcheck: int
    culprit: str
    is_64bit: bool
    drivers: int


@dataclass
class DumpTree:
    root: Path
    good: list[Path] = field(default_factory=list)
    broken: list[Path] = field(default_factory=list)
    not_dumps: list[Path] = field(default_factory=list)
    expected: dict[Path, Expected] = field(default_factory=dict)  # the synthetic kernel worlds among ``good``

    def all_dumps(self) -> list[Path]:
        return sorted(self.good + self.broken)

    def hashes(self) -> dict[Path, str]:
        return {p: sha256(p) for p in sorted(self.root.rglob("*")) if p.is_file()}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def synth_dump(path: Path, arch: str, dump_type: int, bugcheck: int, *, ram_mib: int = 8) -> Path:
    space = dumpsynth.AddressSpace(arch, ram_bytes=ram_mib << 20)
    space.map(0xFFFFF80000000000 if arch == "x64" else 0x80000000, b"dbgauto batch test page")
    path.parent.mkdir(parents=True, exist_ok=True)
    dumpsynth.write_dump(path, space, dump_type, fields=dumpsynth.HeaderFields(bugcheck_code=bugcheck))
    return path


def kworld_dump(
    path: Path, arch: str, dump_type: int, bugcheck: int, culprit: str, *, seed: int = 0, ram_mib: int = 8
) -> tuple[Path, Expected]:
    """A convertible synthetic kernel world (dbgauto_testkit.dumpinflate.kworld) and what its facts must say."""
    path.parent.mkdir(parents=True, exist_ok=True)
    made = dumpinflate.write_kworld(
        path, arch, dump_type, seed=seed, bugcheck=bugcheck, culprit=culprit, ram_bytes=ram_mib << 20
    )
    w = made.world
    return path, Expected(bugcheck, w.culprit.base_name, w.is_64bit, len(w.modules))


def add_broken(root: Path, good: Path) -> list[Path]:
    """Dumps with a valid signature that no reader can use: a cut header and a bad DumpType."""
    data = good.read_bytes()
    cut = root / "broken" / "cut_header.dmp"
    cut.parent.mkdir(parents=True, exist_ok=True)
    cut.write_bytes(data[:0x900])
    odd = root / "broken" / "bad_type.dmp"
    head = bytearray(data[:0x3000])
    offset = 0xF98 if head[4:8] == b"DU64" else 0xF88
    head[offset : offset + 4] = (0x77).to_bytes(4, "little")
    odd.write_bytes(bytes(head))
    return [cut, odd]


def make_synth_tree(root: Path) -> DumpTree:
    tree = DumpTree(root)
    for seed, (rel, arch, dump_type, bugcheck, culprit) in enumerate(SYNTH_VARIETIES):
        path, expected = kworld_dump(root / rel, arch, dump_type, bugcheck, culprit, seed=seed)
        tree.good.append(path)
        tree.expected[path] = expected
    tree.broken = add_broken(root, tree.good[0])
    note = root / "a" / "notes.dmp"  # a .dmp that is not a dump: not discovered
    note.write_bytes(b"MDMP" + b"\0" * 100)
    tree.not_dumps.append(note)
    return tree


def dbgauto_cmd(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "dbgauto", *map(str, args)]


def run_cli(
    *args: str | os.PathLike[str], env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child interpreter (no TTY: plain log lines)."""
    full_env = {k: v for k, v in os.environ.items() if k != "DBGAUTO_FAULT_INJECT"}  # only when a test asks
    full_env.update(env or {})
    return subprocess.run(
        dbgauto_cmd(*args), capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO, check=False
    )


def make_full_tree(root: Path, triage: Path) -> DumpTree:
    """Dumps for the whole main job: inflated large dumps and two 32-bit kernel worlds, two copies of the real small
    dump under the same name in different folders, and broken ones."""
    tree = DumpTree(root)
    for rel in ("site1/MEMORY.DMP", "site2/MEMORY.DMP"):
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(triage.read_bytes())
        tree.good.append(dst)
    tree.good.extend(inflated_dumps(root / "large", triage))
    for seed, (rel, arch, dump_type, bugcheck, culprit) in enumerate(KWORLD_32_VARIETIES, start=10):
        path, expected = kworld_dump(root / rel, arch, dump_type, bugcheck, culprit, seed=seed)
        tree.good.append(path)
        tree.expected[path] = expected
    tree.broken = add_broken(root, tree.good[0])
    return tree


# (name, DumpType, KDBG encoded, page placement): the large varieties dumpinflate rebuilds from the real dump
# Two share a file name (every host writes MEMORY.DMP): their outputs must not collide.
INFLATED_VARIETIES = (
    ("complete.dmp", 1, False, "sequential"),
    ("hostA/MEMORY.DMP", 6, True, "scattered"),
    ("hostB/MEMORY.DMP", 5, False, "scattered"),
)


def inflated_dumps(folder: Path, triage: Path, count: int | None = None) -> list[Path]:
    """Large convertible dumps built from the real small dump by dbgauto_testkit.dumpinflate."""
    small = dumpinflate.parse(triage)
    varieties = INFLATED_VARIETIES[:count]
    for name, *_ in varieties:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
    return [
        dumpinflate.inflate(triage, folder / name, dump_type=t, encoded=enc, placement=pl, small=small).path
        for name, t, enc, pl in varieties
    ]


class LineWatch:
    """A child's output lines, read on a thread as they come: tests wait for an event (a line), not for time.

    ``wait_for`` returns the first line matching a pattern, or None when the stream ended (or the generous
    deadline passed) without one; it never decides anything from how long something took.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True, name="line-watch")
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _match(self, rx: re.Pattern[str]) -> str | None:
        return next((line for line in self.lines if rx.search(line)), None)

    def wait_for(self, pattern: str, deadline: float = 60.0) -> str | None:
        rx = re.compile(pattern)
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._match(rx) is not None, timeout=deadline)
            return self._match(rx)

    def text(self, deadline: float = 60.0) -> str:
        """Everything the child wrote (call after it exited: waits for the end of the stream)."""
        self._thread.join(deadline)
        with self._cond:
            return "".join(self.lines)


DAY = 86400


def new_and_old_dumps(src: Path, triage: Path, old_days: int = 30) -> Path:
    """``src/PC1/Minidump`` holding two copies of ``triage``: ``new.dmp`` and ``old.dmp``, the latter last
    modified ``old_days`` days ago (for ``--since``). Returns the folder."""
    import shutil
    import time

    mini = src / "PC1" / "Minidump"
    mini.mkdir(parents=True)
    shutil.copyfile(triage, mini / "new.dmp")
    shutil.copyfile(triage, mini / "old.dmp")
    past = time.time() - old_days * DAY
    os.utime(mini / "old.dmp", (past, past))
    return mini
