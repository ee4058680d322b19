"""Identification by the RSDS record of the kernel image that a large dump holds in memory (issue 11).

A synthetic x64 kernel world (dbgauto_testkit.dumpinflate.kworld: KDBG, PsLoadedModuleList, processors,
threads) is written as a Complete dump, with a REAL image built here by clang + lld-link laid out at nt's base
as the loader does (headers and sections placed from llvm-readobj's section table), so its debug directory's
RSDS record is in the dump. The crash state is real too: the image's top_a → mid_b → frame_d → leaf_c chain
run in the unicorn emulator up to its breakpoint, registers and stack relocated to the world's nt base and
crashing stack, so the dump's unwinder walks the image's own .pdata. Its real PDB is served by a loopback
symbol server (or a local store) under the key the image names. Expectations: the GUID/age from llvm-readobj,
the function RVAs from llvm-readobj's export table, the frames' pcs from the emulator, the names from the C
source.

A table is used only when it is the one the image names: a misfiled PDB (another build's PDB served under
this key) or a dump whose RSDS names another GUID leaves the dump without symbols, with the reason.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from dbgauto_testkit.dumpinflate.kworld import build_kworld, write_kworld
from dbgauto_testkit.winbuild import (
    CHAIN,
    CHAIN_C,
    ReadobjImage,
    build,
    image_layout,
    move_run,
    needs_toolchain,
    rsds_of,
    run_until_break,
)
from symserver import ServedTree

from dbgauto.engines.jobs import facts_from_dump, open_session
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.open import read_parts
from dbgauto.symbols.context import KernelInputs, SymbolContext
from dbgauto.symbols.sympath import resolve_symbol_path

pytestmark = needs_toolchain

SEED = 5
OTHER_C = CHAIN_C + "\n__declspec(dllexport) int other_build(int x) { return x * 11; }\n"


@dataclass
class Kernel:
    image: Path
    pdb: Path
    info: ReadobjImage
    layout: list[tuple[int, bytes]]
    guid: str
    age: int
    pdb_name: str

    @property
    def key_path(self) -> str:
        return f"ntkrnlmp.pdb/{self.guid}{self.age:X}/ntkrnlmp.pdb"


def _kernel(tmp: Path, source: str) -> Kernel:
    image = build(tmp, "ntkrnlmp", "x64", c_source=source, cflags=("-g", "-gcodeview"))
    info, layout = image_layout(image)
    guid, age, pdb_name = rsds_of(image)
    return Kernel(image, image.with_suffix(".pdb"), info, layout, guid, age, pdb_name)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Kernel:
    return _kernel(tmp_path_factory.mktemp("nt"), CHAIN_C)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Kernel:
    """Another build of the kernel: same PDB name, another GUID."""
    return _kernel(tmp_path_factory.mktemp("nt_other"), OTHER_C)


@dataclass
class Crash:
    """The machine state at the chain's breakpoint, moved to where the world keeps nt and the crashing stack."""

    base: int  # nt's base in the world
    registers: dict[str, int]
    stack_va: int
    stack: bytes
    frames: list[tuple[str, int]]  # (function, pc) innermost first, from the emulator (not from dbgauto)


def crash_state(k: Kernel) -> Crash:
    """Run top_a → mid_b → frame_d → leaf_c in unicorn (the image at its preferred base), then relocate: words in
    the image move to nt's base in the world, words in the emulator's stack to the world's crashing stack (the
    header CONTEXT's rsp). Return addresses are the words each call pushed (at its callee's entry sp)."""
    run = run_until_break(k.image, "x64", "top_a")
    probe = build_kworld("x64", seed=SEED)
    base, stack_va = probe.modules[0].base, probe.header_sp
    moved = move_run(run, CHAIN, base, stack_va)
    return Crash(base=base, registers=moved.registers, stack_va=stack_va, stack=moved.stack, frames=moved.frames)


def write_world(path: Path, k: Kernel, crash: Crash, *, patch: bytes | None = None) -> Path:
    """A Complete dump of a kworld whose nt image is ``k``'s real image (its RSDS GUID optionally replaced by
    ``patch``), stopped in leaf_c: the header CONTEXT and the crashing stack are ``crash``'s."""
    world = build_kworld("x64", seed=SEED, header_registers=crash.registers)
    assert world.modules[0].base == crash.base
    assert world.header_sp == crash.stack_va
    for rva, data in k.layout:
        if patch is not None and b"RSDS" in data:
            at = data.index(b"RSDS") + 4
            data = data[:at] + patch + data[at + 16 :]
        world.space.map(crash.base + rva, data)  # over the world's stand-in header page; new pages for sections
    world.space.write_virtual(crash.stack_va, crash.stack)
    write_kworld(path, world=world, dump_type=1, overwrite=True)
    return path


@pytest.fixture(scope="module")
def crash(kernel: Kernel) -> Crash:
    return crash_state(kernel)


@pytest.fixture(scope="module")
def dump(kernel: Kernel, crash: Crash, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_world(tmp_path_factory.mktemp("dump") / "kernel.dmp", kernel, crash)



def _context(dump_path: Path, symbol_path: str) -> SymbolContext:
    with KernelDump.open(dump_path) as d:  # the image is read from the open dump's memory
        return SymbolContext.build(KernelInputs.from_parts(read_parts(d)), resolve_symbol_path(symbol_path, {}))


def _named(k: Kernel, crash: Crash) -> list[str]:
    """``nt!function+0xoff`` per frame: offsets from llvm-readobj's export RVAs, pcs from the emulator."""
    return [f"nt!{name}+{pc - crash.base - k.info.exports[name]:#x}" for name, pc in crash.frames]


def test_served_pdb_is_identified_by_the_images_rsds_in_the_dump(
    kernel: Kernel, crash: Crash, dump: Path, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = served
    tree.files[f"symbols/{kernel.key_path}"] = kernel.pdb.read_bytes()
    ctx = _context(dump, f"srv*{tmp_path / 'store'}*{url}")
    assert ctx.method == "rsds", (ctx.reason, ctx.warnings, tree.log)
    assert ctx.table is not None
    assert ctx.table.pdb_id == f"{kernel.guid}{kernel.age:X}"
    assert ctx.identification.evidence == (f"{kernel.guid}{kernel.age:X}",)
    assert ctx.describe() == f"nt: ntkrnlmp.pdb {kernel.guid}{kernel.age:X} (identified by rsds)"
    assert f"symbols/{kernel.key_path}" in tree.log
    assert not any("ntoskrnl.exe/" in p for p in tree.log)  # the image in memory sufficed: no image fetched
    assert [ctx.code_name(pc) for _, pc in crash.frames] == _named(kernel, crash)
    for name in CHAIN:
        assert ctx.address_of(f"nt!{name}") == crash.base + kernel.info.exports[name]
    # the world's own nt globals lie outside the real image's code: never named as functions
    assert ctx.code_name(crash.base + 0x3F5E10) == "nt+0x3f5e10"


def test_unwound_frames_and_native_commands_name_from_that_pdb(
    kernel: Kernel, crash: Crash, dump: Path, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = served
    tree.files[f"symbols/{kernel.key_path}"] = kernel.pdb.read_bytes()
    sp = f"srv*{tmp_path / 'store'}*{url}"
    facts = facts_from_dump(dump, symbol_path=sp).to_dict()
    assert facts["x_symbols"]["method"] == "rsds"
    assert facts["x_symbols"]["table"] == f"{kernel.guid}{kernel.age:X}"
    frames = facts["stack"]["frames"][: len(CHAIN)]
    assert [f.get("symbol") for f in frames] == _named(kernel, crash)
    assert [f["trust"] for f in frames] == ["context", "cfi", "cfi", "cfi"]  # unwound by the image's .pdata
    mid = crash.base + kernel.info.exports["mid_b"] + 0x7
    with open_session(dump, "native", symbol_path=sp) as s:
        k_text = s.run("k").output
        positions = [k_text.find(name) for name in _named(kernel, crash)]
        assert -1 not in positions, k_text
        assert positions == sorted(positions)
        assert "nt!mid_b+0x7" in s.run(f"ln {mid:#x}").output
        listed = s.run("x nt!*_?").output
        for name in CHAIN:
            assert f"nt!{name}" in listed


def test_local_store_pdb_is_identified_by_rsds(kernel: Kernel, crash: Crash, dump: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / kernel.key_path).parent.mkdir(parents=True)
    shutil.copy(kernel.pdb, store / kernel.key_path)
    ctx = _context(dump, str(store))
    assert ctx.method == "rsds"
    assert [ctx.code_name(pc) for _, pc in crash.frames] == _named(kernel, crash)


def test_misfiled_pdb_of_another_build_is_refused(
    kernel: Kernel, other: Kernel, crash: Crash, dump: Path, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    assert other.guid != kernel.guid
    url, tree = served
    tree.files[f"symbols/{kernel.key_path}"] = other.pdb.read_bytes()  # a store that filed it wrongly
    ctx = _context(dump, f"srv*{tmp_path / 'store'}*{url}")
    assert f"symbols/{kernel.key_path}" in tree.log  # fetched, then refused
    assert ctx.table is None
    assert ctx.method is None
    reason = ctx.reason or ""
    stored = tmp_path / "store" / kernel.key_path
    want, got = f"{kernel.guid}{kernel.age:X}", f"{other.guid}{other.age:X}"
    assert f"PDB {stored} refused: GUID/age mismatch (the file is {got}, the image names {want})" in reason
    assert "not found" not in reason
    assert any(f"PDB {stored} refused" in w for w in ctx.warnings)
    assert [ctx.code_name(pc) for _, pc in crash.frames] == [f"nt+{pc - crash.base:#x}" for _, pc in crash.frames]
    assert ctx.record()["table"] is None
    facts = facts_from_dump(dump, symbol_path=f"srv*{tmp_path / 'store'}*{url}").to_dict()
    assert facts["x_symbols"]["table"] is None
    assert not any(f.get("function") for f in facts["stack"]["frames"])


def test_unreadable_pdb_is_refused_naming_the_file(
    kernel: Kernel, dump: Path, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = served
    tree.files[f"symbols/{kernel.key_path}"] = kernel.pdb.read_bytes()[:5000]  # cut short
    ctx = _context(dump, f"srv*{tmp_path / 'store'}*{url}")
    assert ctx.table is None
    reason = ctx.reason or ""
    assert f"PDB {tmp_path / 'store' / kernel.key_path} refused: unreadable (" in reason, reason
    assert "not found" not in reason


def test_absent_pdb_is_still_not_found(
    kernel: Kernel, dump: Path, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, _tree = served
    ctx = _context(dump, f"srv*{tmp_path / 'store'}*{url}")
    reason = ctx.reason or ""
    assert f"PDB ntkrnlmp.pdb {kernel.guid}{kernel.age:X} not found" in reason, reason
    assert "refused" not in reason


def test_dump_whose_rsds_names_another_guid_gets_no_table(
    kernel: Kernel, crash: Crash, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    flipped = bytes.fromhex(kernel.guid)[::-1]  # 16 bytes, not this PDB's GUID
    wanted = uuid.UUID(bytes_le=flipped).hex.upper()
    assert wanted != kernel.guid
    path = write_world(tmp_path / "flipped.dmp", kernel, crash, patch=flipped)
    url, tree = served
    tree.files[f"symbols/{kernel.key_path}"] = kernel.pdb.read_bytes()  # the real PDB, under its real key
    # and the real PDB also misfiled under the GUID the dump asks for
    tree.files[f"symbols/ntkrnlmp.pdb/{wanted}{kernel.age:X}/ntkrnlmp.pdb"] = kernel.pdb.read_bytes()
    ctx = _context(path, f"srv*{tmp_path / 'store'}*{url}")
    assert f"symbols/ntkrnlmp.pdb/{wanted}{kernel.age:X}/ntkrnlmp.pdb" in tree.log
    assert f"symbols/{kernel.key_path}" not in tree.log
    assert ctx.table is None
    assert ctx.code_name(crash.frames[0][1]) == f"nt+{crash.frames[0][1] - crash.base:#x}"
