"""The inflater's own guarantees: synthesized structures never overwrite captured bytes, and the copies it
places agree with the data blocks they overlap (the sample's KPRCB copy is also a data block)."""

from __future__ import annotations

from typing import Any

import pytest
from dbgauto_testkit import dumpinflate
from dbgauto_testkit.dumpinflate import world as world_mod


def test_synthesized_bytes_cannot_overwrite_captured_ones(small: Any) -> None:
    w = dumpinflate.build_world(small)
    captured = world_mod._Captured(small)
    prcb_block = next(a for a, d in small.blocks if len(d) == 0xAF00)
    w.place(prcb_block + 0x10, b"\xff" * 8, "synthesized thing")
    with pytest.raises(ValueError, match="would overwrite"):
        world_mod.check_placements(w, captured)


def test_copies_must_agree_with_data_blocks(small: Any) -> None:
    w = dumpinflate.build_world(small)
    captured = world_mod._Captured(small)
    w.place(w.prcb_va, b"\xff" + small.prcb[1:], "KPRCB copy")
    with pytest.raises(ValueError, match="disagrees"):
        world_mod.check_placements(w, captured)


def test_world_facts(small: Any) -> None:
    w = dumpinflate.build_world(small, encoded=True)
    assert w.crashing_cpu == 0
    assert len(w.module_entries) == len(small.drivers) == 151
    assert w.keys is not None
    assert w.keys[:2] == dumpinflate.DEFAULT_KEYS
    assert w.code_va is not None
    assert small.drivers[0].base <= w.code_va < small.drivers[0].base + small.drivers[0].size
    # every other processor got its current thread's stack bounds where the sample lacks those bytes
    assert set(w.synthesized_stack_bases) == {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 14, 15}
