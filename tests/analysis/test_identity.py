"""Identity on every build: the build-independent search over the EPROCESS/ETHREAD copies, cross-checked with
the 19041 offset table.

Layouts other than the real dump's come from public offset tables (facts only):
* x64 Windows 8.1 (build 9600): EPROCESS.UniqueProcessId 0x2E0, ImageFileName 0x438, ETHREAD.Cid 0x620 — the
  ``win81`` profile of Roberto Paleari's qtrace (``profiles/win81/symbols.h``).
* x86 Windows XP SP3 (build 2600): UniqueProcessId 0x84, ImageFileName 0x174, ETHREAD.Cid 0x1EC — qtrace's
  ``winxpsp3`` profile.
* x64 Windows 11 24H2 (build 26100): UniqueProcessId 0x1D0, ActiveProcessLinks 0x1D8, ImageFileName 0x338
  (public 24H2 offset tables from PDB symbols); its ETHREAD.Cid is not in that table, so the copy places it at
  0x508, inside the structure: the search must not depend on where it is.
* x86 Windows 7 SP1 (build 7601) written by the testkit's kworld (UniqueProcessId 0xB4, ImageFileName 0x16C,
  Cid 0x22C, its own sources): no table row, so only the search can answer.
In every NT layout ActiveProcessLinks directly follows UniqueProcessId.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from dbgauto_testkit.dumpinflate import kworld

from dbgauto.engines.jobs import facts_from_dump
from dbgauto.kdump.constants import Machine
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.identity import identify, search_identity, table_identity
from dbgauto.kernel.open import read_parts

LAYOUTS = {  # name: (pointer size, EPROCESS size, pid, name, ETHREAD size, Cid)
    "x64-9600": (8, 0x700, 0x2E0, 0x438, 0x800, 0x620),
    "x86-2600": (4, 0x260, 0x84, 0x174, 0x258, 0x1EC),
    "x64-26100": (8, 0xB00, 0x1D0, 0x338, 0x900, 0x508),
}


def _copies(layout: str, name: bytes, pid: int, tid: int, seed: int) -> tuple[bytes, bytes]:
    ps, psize, o_pid, o_name, tsize, o_cid = LAYOUTS[layout]
    rng = random.Random(seed)
    word = "<Q" if ps == 8 else "<I"
    kernel = 0xFFFF_C000_0000_0000 if ps == 8 else 0x8500_0000
    proc, thread = bytearray(psize), bytearray(tsize)
    for buf in (proc, thread):  # odd flags and kernel pointers (an even small counter before a list head, or a
        # second (pid, tid)-shaped pair, makes the search answer "unknown": see test_disagreement...)
        for off in range(0, len(buf) - ps, ps):
            r = rng.random()
            v = (rng.randrange(0x100) | 1) if r < 0.3 else (kernel + rng.randrange(1 << 24) * 8 if r < 0.5 else 0)
            struct.pack_into(word, buf, off, v)
    struct.pack_into(word, proc, o_pid, pid)
    struct.pack_into(word, proc, o_pid + ps, kernel + 0x1000)  # ActiveProcessLinks.Flink
    struct.pack_into(word, proc, o_pid + 2 * ps, kernel + 0x2000)  # .Blink
    proc[o_name : o_name + 15] = name.ljust(15, b"\0")
    struct.pack_into(word, thread, o_cid, pid)
    struct.pack_into(word, thread, o_cid + ps, tid)
    return bytes(proc), bytes(thread)


def test_real_dump_by_search_and_by_table(triage_x64_path: Path) -> None:
    parts = read_parts(KernelDump.open(triage_x64_path))
    found = search_identity(parts.process, parts.thread, 8)
    table = table_identity(
        machine=parts.machine,
        build=parts.build,
        pointer_size=8,
        kdbg_fields=parts.kdbg_fields,
        process=parts.process,
        thread=parts.thread,
    )
    # System / 4 / 264: ../shared/spec/observed-triage-x64.md and the ground truth
    assert (found.process_name, found.pid, found.tid, found.method) == ("System", 4, 264, "search")
    assert (table.process_name, table.pid, table.tid, table.method) == ("System", 4, 264, "offset-table")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("seed", range(5))
def test_other_builds_by_search(layout: str, seed: int) -> None:
    proc, thread = _copies(layout, b"notmyfault64.e", 0x1A2C, 0x2F10, seed)
    ps = LAYOUTS[layout][0]
    machine = Machine.AMD64 if ps == 8 else Machine.I386
    got = identify(machine=machine, build=1, pointer_size=ps, kdbg_fields={}, process=proc, thread=thread)
    assert (got.process_name, got.pid, got.tid, got.method) == ("notmyfault64.e", 0x1A2C, 0x2F10, "search")


def test_disagreement_and_damage_give_unknown() -> None:
    proc, thread = _copies("x64-9600", b"svchost.exe", 0x2C4, 0x1008, 1)
    bad = bytearray(thread)
    struct.pack_into("<Q", bad, 0x620, 0x2C8)  # Cid.UniqueProcess no longer equals the process id
    assert search_identity(proc, bytes(bad), 8).pid is None
    assert search_identity(proc[:0x100], thread, 8).process_name is None
    assert search_identity(b"", b"", 8).pid is None
    assert search_identity(proc, thread, 2).pid is None


def test_kworld_x86_build_7601_has_no_table_row_but_is_found(tmp_path: Path) -> None:
    out = kworld.write_kworld(tmp_path / "x86.dmp", "x86pae", 1, seed=3)
    w = out.world
    facts = facts_from_dump(out.path)
    assert (facts.process_name, facts.pid, facts.tid) == (w.process_name, w.pid, w.tid)
    assert facts.experimental["identity_method"] == "search"
