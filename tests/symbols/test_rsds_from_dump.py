"""Identification by the RSDS record of the kernel image that a large dump holds in memory (issue 11).

A synthetic x64 kernel world (dbgauto_testkit.dumpinflate.kworld: KDBG, PsLoadedModuleList, processors,
threads) is written as a Complete dump, with a REAL image built here by clang + lld-link laid out at nt's base
as the loader does (headers and sections placed from llvm-readobj's section table), so its debug directory's
RSDS record is in the dump. Its real PDB is served by a loopback symbol server (or a local store) under the
key the image names. Expectations: the GUID/age from llvm-readobj, the function RVAs from llvm-readobj's
export table, the function names from the C source.

A table is used only when it is the one the image names: a misfiled PDB (another build's PDB served under
this key) or a dump whose RSDS names another GUID leaves the dump without symbols, with the reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dbgauto_testkit.dumpinflate.kworld import build_kworld, write_kworld
from dbgauto_testkit.winbuild import CHAIN, CHAIN_C, ReadobjImage, build, image_layout, rsds_of
from symserver import ServedTree, serve

from dbgauto.engines.jobs import facts_from_dump, open_session
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.open import read_parts
from dbgauto.symbols.context import KernelInputs, SymbolContext
from dbgauto.symbols.sympath import resolve_symbol_path

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("clang", "lld-link", "llvm-readobj")),
    reason="needs clang, lld-link, llvm-readobj (apt: clang lld llvm)",
)

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


def _return_addresses(base: int, k: Kernel) -> dict[int, str]:
    """Addresses inside each function of the chain (as return addresses into them are) → the function."""
    return {base + k.info.exports[name] + 0x5 + i: name for i, name in enumerate(CHAIN)}


def write_world(path: Path, k: Kernel, *, patch: bytes | None = None) -> tuple[Path, int]:
    """A Complete dump of a kworld whose nt image is ``k``'s real image (RSDS record optionally replaced by
    ``patch``: the 16 GUID bytes); returns the path and nt's base."""
    probe = build_kworld("x64", seed=SEED)
    base = probe.modules[0].base
    world = build_kworld("x64", seed=SEED, stack_values=list(_return_addresses(base, k)))
    assert world.modules[0].base == base
    for rva, data in k.layout:
        if patch is not None and b"RSDS" in data:
            at = data.index(b"RSDS") + 4
            data = data[:at] + patch + data[at + 16 :]
        world.space.map(base + rva, data)  # over the world's stand-in header page; new pages for the sections
    write_kworld(path, world=world, dump_type=1, overwrite=True)
    return path, base


@pytest.fixture(scope="module")
def dump(kernel: Kernel, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    return write_world(tmp_path_factory.mktemp("dump") / "kernel.dmp", kernel)


@pytest.fixture
def server() -> Iterator[tuple[str, ServedTree]]:
    with serve() as s:
        yield s


def _context(dump_path: Path, symbol_path: str) -> SymbolContext:
    with KernelDump.open(dump_path) as d:  # the image is read from the open dump's memory
        return SymbolContext.build(KernelInputs.from_parts(read_parts(d)), resolve_symbol_path(symbol_path, {}))


def test_served_pdb_is_identified_by_the_images_rsds_in_the_dump(
    kernel: Kernel, dump: tuple[Path, int], server: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = server
    tree.files[f"symbols/{kernel.key_path}"] = kernel.pdb.read_bytes()
    path, base = dump
    ctx = _context(path, f"srv*{tmp_path / 'store'}*{url}")
    assert ctx.method == "rsds", (ctx.reason, ctx.warnings, tree.log)
    assert ctx.table is not None
    assert ctx.table.pdb_id == f"{kernel.guid}{kernel.age:X}"
    assert ctx.identification.evidence == (f"{kernel.guid}{kernel.age:X}",)
    assert ctx.describe() == f"nt: ntkrnlmp.pdb {kernel.guid}{kernel.age:X} (identified by rsds)"
    assert f"symbols/{kernel.key_path}" in tree.log
    assert not any("ntoskrnl.exe/" in p for p in tree.log)  # the image in memory sufficed: no image fetched
    for address, name in _return_addresses(base, kernel).items():
        assert ctx.code_name(address) == f"nt!{name}+{address - base - kernel.info.exports[name]:#x}"
    for name, rva in kernel.info.exports.items():
        if name in CHAIN:
            assert ctx.address_of(f"nt!{name}") == base + rva
    # the world's own nt globals lie outside the real image's code: never named as functions
    assert ctx.code_name(base + 0x3F5E10) == "nt+0x3f5e10"


def test_facts_and_native_commands_name_from_that_pdb(
    kernel: Kernel, dump: tuple[Path, int], server: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = server
    tree.files[f"symbols/{kernel.key_path}"] = kernel.pdb.read_bytes()
    path, base = dump
    sp = f"srv*{tmp_path / 'store'}*{url}"
    facts = facts_from_dump(path, symbol_path=sp).to_dict()
    assert facts["x_symbols"]["method"] == "rsds"
    assert facts["x_symbols"]["table"] == f"{kernel.guid}{kernel.age:X}"
    mid = base + kernel.info.exports["mid_b"] + 0x7
    with open_session(path, "native", symbol_path=sp) as s:
        assert "nt!mid_b+0x7" in s.run(f"ln {mid:#x}").output
        listed = s.run("x nt!*_?").output
        for name in ("leaf_c", "frame_d", "mid_b", "top_a"):
            assert f"nt!{name}" in listed


def test_local_store_pdb_is_identified_by_rsds(kernel: Kernel, dump: tuple[Path, int], tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / kernel.key_path).parent.mkdir(parents=True)
    shutil.copy(kernel.pdb, store / kernel.key_path)
    path, base = dump
    ctx = _context(path, str(store))
    assert ctx.method == "rsds"
    assert ctx.code_name(base + kernel.info.exports["top_a"] + 2) == "nt!top_a+0x2"


def test_misfiled_pdb_of_another_build_is_refused(
    kernel: Kernel, other: Kernel, dump: tuple[Path, int], server: tuple[str, ServedTree], tmp_path: Path
) -> None:
    assert other.guid != kernel.guid
    url, tree = server
    tree.files[f"symbols/{kernel.key_path}"] = other.pdb.read_bytes()  # a store that filed it wrongly
    path, base = dump
    ctx = _context(path, f"srv*{tmp_path / 'store'}*{url}")
    assert f"symbols/{kernel.key_path}" in tree.log  # fetched, then refused
    assert ctx.table is None
    assert ctx.method is None
    assert f"{kernel.guid}{kernel.age:X} not found" in (ctx.reason or "")
    mid = base + kernel.info.exports["mid_b"] + 0x7
    assert ctx.code_name(mid) == f"nt+{mid - base:#x}"
    assert ctx.record()["table"] is None


def test_dump_whose_rsds_names_another_guid_gets_no_table(
    kernel: Kernel, server: tuple[str, ServedTree], tmp_path: Path
) -> None:
    flipped = bytes.fromhex(kernel.guid)[::-1]  # 16 bytes, not this PDB's GUID
    path, base = write_world(tmp_path / "flipped.dmp", kernel, patch=flipped)
    url, tree = server
    tree.files[f"symbols/{kernel.key_path}"] = kernel.pdb.read_bytes()  # the real PDB, under its real key
    import uuid

    wanted = uuid.UUID(bytes_le=flipped).hex.upper()
    # and the real PDB also misfiled under the GUID the dump asks for
    tree.files[f"symbols/ntkrnlmp.pdb/{wanted}{kernel.age:X}/ntkrnlmp.pdb"] = kernel.pdb.read_bytes()
    ctx = _context(path, f"srv*{tmp_path / 'store'}*{url}")
    assert f"symbols/ntkrnlmp.pdb/{wanted}{kernel.age:X}/ntkrnlmp.pdb" in tree.log
    assert f"symbols/{kernel.key_path}" not in tree.log
    assert ctx.table is None
    assert ctx.code_name(base + kernel.info.exports["leaf_c"]) == f"nt+{kernel.info.exports['leaf_c']:#x}"
