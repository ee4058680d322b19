"""Reading a dump after it was closed is a typed error naming the file, never a silent "absent" answer.

Before, a closed dump's memory answered None (the physical map was dropped, cached pages still answered), so a
symbol context built after ``with KernelDump.open(...)`` ended saw "no RSDS record" instead of the real cause.
The dump is a synthetic kernel world (testkit kworld) written as a Complete dump; the bytes read before closing
are the world's own (placed by the generator, not read back through dbgauto).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dbgauto_testkit.dumpinflate.kworld import build_kworld, write_kworld

from dbgauto.errors import DumpClosedError, DumpFormatError
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.open import read_parts
from dbgauto.symbols.context import KernelInputs, SymbolContext
from dbgauto.symbols.sympath import resolve_symbol_path


@pytest.fixture(scope="module")
def world_dump(tmp_path_factory: pytest.TempPathFactory):
    world = build_kworld("x64", seed=3)
    path = tmp_path_factory.mktemp("closed") / "kernel.dmp"
    write_kworld(path, world=world, dump_type=1, overwrite=True)
    return world, path


def test_reads_after_close_raise_dump_closed_error(world_dump) -> None:
    world, path = world_dump
    d = KernelDump.open(path)
    parts = read_parts(d)
    mem = parts.memory
    assert mem is not None
    assert mem.read(world.kdbg_va, 16) == world.kdbg_stored[:16]  # readable while open (and now cached)
    d.close()
    assert d.closed
    for read in (
        lambda: mem.read(world.kdbg_va, 16),  # a cached page too
        lambda: mem.read(world.header_sp, 8),
        lambda: mem.read_prefix(world.kdbg_va, 16),
        lambda: d.read_virtual(world.kdbg_va, 16),
        lambda: d.read_file(0, 16),
        lambda: d.page_offset(0),
        lambda: d.read_physical(0, 16),
    ):
        with pytest.raises(DumpClosedError) as err:
            read()
        assert isinstance(err.value, DumpFormatError)
        assert str(path) in str(err.value)
        assert "dump is closed" in str(err.value)


def test_symbol_context_built_after_close_says_the_dump_is_closed(world_dump, tmp_path: Path) -> None:
    _world, path = world_dump
    with KernelDump.open(path) as d:
        inputs = KernelInputs.from_parts(read_parts(d))
    ctx = SymbolContext.build(inputs, resolve_symbol_path(str(tmp_path), {}))
    assert ctx.table is None
    assert "dump is closed" in (ctx.reason or ""), ctx.reason
    assert "RSDS" not in (ctx.reason or "")


def test_close_is_idempotent_and_reads_before_close_are_unaffected(world_dump) -> None:
    world, path = world_dump
    with KernelDump.open(path) as d:
        assert not d.closed
        assert d.read_virtual(world.kdbg_va, 16) == world.kdbg_stored[:16]
    d.close()
    assert d.closed


def test_a_small_dumps_copies_after_close_raise_dump_closed_error(triage_x64_path: Path) -> None:
    """A small dump's memory is its copies (KPRCB, thread, process, stack); after close they raise the same error."""
    d = KernelDump.open(triage_x64_path)
    parts = read_parts(d)
    assert parts.memory is not None
    assert parts.top_of_stack is not None
    top = parts.top_of_stack
    assert parts.memory.read(top, 8) == bytes(parts.stack[:8])  # the stack copy, while open
    d.close()
    with pytest.raises(DumpClosedError) as err:
        parts.memory.read(top, 8)
    assert str(triage_x64_path) in str(err.value)
