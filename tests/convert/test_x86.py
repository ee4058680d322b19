"""32-bit: no real 32-bit dump is reachable, so dbgauto_testkit.dumpinflate.kworld builds an x86 PAE kernel world from
the spec's 32-bit layouts (KDBG, two processors, current threads and process, stack, loaded-module list with PE
headers, unloaded drivers, MM globals); written as a Complete dump, the conversion must find each part."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from dbgauto_testkit import dumpinflate

from dbgauto.engines.jobs import convert_dump
from dbgauto.kdump.reader import KernelDump

POOL = 0x88000000  # pool pages of the test's own, outside the world's allocations
SKIPPED_BLOCKS = "data blocks: skipped memory not in the dump"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    w = dumpinflate.build_kworld(
        "x86pae",
        seed=5,
        bugcheck=0x7E,
        culprit="crashy.sys",
        processors=2,
        stack_values=(POOL + 0x100, 0x1234, POOL + 0x2000),  # windows to follow from the stack copy
        header_registers={"eax": POOL + 0x40},  # and from the header CONTEXT
    )
    assert all(w.space.translate(POOL + off) is None for off in range(0, 0x3000, 0x1000))
    w.space.map(POOL, bytes(range(256)) * 48)  # window targets
    path = tmp_path_factory.mktemp("x86") / "x86pae.dmp"
    made = dumpinflate.write_kworld(path, world=w)
    assert made.dump_type == 1
    res = convert_dump(path, path.with_suffix(".mini.dmp"))
    return {"res": res, "w": w}


def test_the_world_is_what_the_test_expects(world: dict[str, Any]) -> None:
    w = world["w"]
    assert w.arch == "x86pae"
    assert w.culprit.base_name == "crashy.sys"
    assert w.bugcheck_parameters[1] == w.fault_address  # 0x7E: P2 is the faulting code address
    assert any(len(u.name) > 12 for u in w.unloaded)  # a name the small dump must cut
    entry_ts = {
        m.base: struct.unpack_from("<I", d, 0x44)[0] for m in w.modules for va, d, _ in w.placements if va == m.entry_va
    }
    assert all(entry_ts[m.base] != m.timestamp for m in w.modules)  # the entry and the PE header disagree


def test_x86_conversion_finds_every_part(world: dict[str, Any]) -> None:
    res, w = world["res"], world["w"]
    assert [m for m in res.warnings if not m.startswith(SKIPPED_BLOCKS)] == []
    crashing = w.cpus[w.crashing_cpu]
    with KernelDump.open(res.output) as out:
        assert not out.is_64bit
        assert out.header.pae_enabled is True
        assert out.header.bugcheck_code == 0x7E
        tri = out.triage
        assert tri.prcb == crashing.prcb
        assert tri.thread == crashing.thread
        assert tri.process == w.process
        assert tri.header.top_of_stack == crashing.saved_sp
        assert tri.stack == w.stack
        assert tri.stack[8:20] == struct.pack("<III", POOL + 0x100, 0x1234, POOL + 0x2000)
        assert tri.kdbg is not None
        assert tri.kdbg.raw == w.kdbg
        assert tri.kdbg.raw[0x10:0x14] == b"KDBG"
        assert tri.context is not None
        assert tri.context.sp == w.header_sp
        assert tri.context.pc == w.header_pc
        drivers = [(d.name, d.base, d.size, d.timestamp, d.checksum) for d in tri.drivers]
        # the PE header's TimeDateStamp wins over the entry's (see test_the_world_is_what_the_test_expects)
        assert drivers == [(m.name, m.base, m.size, m.timestamp, m.checksum) for m in w.modules]
        assert drivers[0][0] == "\\SystemRoot\\system32\\ntoskrnl.exe"
        assert drivers[1][0] == "\\SystemRoot\\system32\\hal.dll"
        unloaded = [(u.name, u.start, u.end) for u in tri.unloaded_drivers]
        assert unloaded == [(u.name[:12], u.start, u.end) for u in w.unloaded]  # newest first, 12 characters
        assert tri.mm is not None
        assert tri.mm.raw[8:12] == struct.pack("<I", 0x6C6F6F50)  # MmSpecialPoolTag
        blocks = {b.address: b.size for b in tri.data_blocks}
        assert blocks[w.processor_block] == 8  # KiProcessorBlock: 2 x 4-byte pointers
        for cpu in w.cpus:
            assert blocks[cpu.prcb_va] == 0x3628  # SizePrcb
            assert blocks[cpu.context_va] == 0x2CC  # the CONTEXT KPRCB.Context points to
        assert w.fault_address & ~0xFFF in blocks  # the faulting code address's page
        assert blocks[POOL + 0x40] == 0x100  # the window at EAX
        assert blocks[POOL + 0x140] == 0xC0  # the stack pointer POOL+0x100's window, clipped by EAX's
        assert tri.memory.read(POOL + 0x2000, 0x100) == bytes(range(256))
