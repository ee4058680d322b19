"""x86 FPO frames unwound in a large dump by the PDB its resident image names (issues 16 and 11).

A synthetic x86 kernel world (dbgauto_testkit.dumpinflate.kworld) is written as a Complete dump with a REAL image
built here by clang + lld-link from the x86 FPO sources (FPO_C with ``-fomit-frame-pointer``, EBP_C with frame
pointers: fpo_n even uses ebp as a general register, std_s is stdcall) laid out as the loader does at a module's
base (nt's, or a driver's), so its RSDS record is in the dump. The crash state is real: unicorn runs
top_a → fpo_b → ebp_m → fpo_n → wide_w → std_s → leaf_c and stops inside leaf_c; registers and stack are moved to
the world's module base and crashing stack. The image's own PDB (with the new-FPO FrameData lld writes) is served
by a loopback symbol server or a local store under the key the image names.

Expectations come from the emulator (each activation's return address and entry esp, observed by the tracer),
never from dbgauto: with the PDB the facts' frames are the call chain, each below the context found by ``cfi``;
without it the chain is not recovered and the facts say there are no symbols. A PDB of another build filed under
the image's key is refused, with a warning naming the file.
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from dbgauto_testkit.dumpinflate.kworld import build_kworld, write_kworld
from dbgauto_testkit.winbuild import (
    EBP_C,
    FPO_C,
    FPO_CHAIN,
    STACK_LOW,
    STACK_SIZE,
    ReadobjImage,
    build_multi,
    image_layout,
    needs_toolchain,
    rsds_of,
    trace,
)
from symserver import ServedTree

from dbgauto.engines.jobs import facts_from_dump

pytestmark = needs_toolchain

SEED = 5
DEBUG = ("-g", "-gcodeview")
TOP = STACK_LOW + STACK_SIZE - 0x100  # where winbuild's x86 runs start their stack
EXPORTED = ["_std_s@20" if n == "std_s" else n for n in FPO_CHAIN]  # stdcall's decorated export name
OTHER_EBP_C = EBP_C + "\n__declspec(dllexport) int other_build(int x) { return x * 11; }\n"


@dataclass
class Image:
    path: Path
    pdb: Path
    info: ReadobjImage
    layout: list[tuple[int, bytes]]
    guid: str
    age: int

    def key_path(self, name: str) -> str:
        return f"{name}.pdb/{self.guid}{self.age:X}/{name}.pdb"


def _image(tmp: Path, name: str, ebp_source: str = EBP_C) -> Image:
    path = build_multi(
        tmp,
        name,
        "x86",
        [("fpo", FPO_C, ("-fomit-frame-pointer", *DEBUG)), ("ebp", ebp_source, ("-fno-omit-frame-pointer", *DEBUG))],
    )
    info, layout = image_layout(path)
    guid, age, _pdb = rsds_of(path)
    return Image(path, path.with_suffix(".pdb"), info, layout, guid, age)


@dataclass
class Snapshot:
    """The machine inside leaf_c, at the image's preferred base and winbuild's stack (not yet moved)."""

    regs: dict[str, int]
    stack: bytes  # [esp, TOP)
    pcs: list[int]  # the call chain innermost first: pc, then each activation's return address
    sps: list[int]  # each frame's esp: the live one, then each callee's entry esp + 4 (its return popped)


def _snapshot(img: Image) -> Snapshot:
    base = img.info.image_base
    got: dict[str, Snapshot] = {}

    def on_insn(pc: int, regs: dict[str, int], stack, read) -> None:
        if got or [a.name for a in reversed(stack)] != EXPORTED or pc - base - img.info.exports["leaf_c"] < 8:
            return
        raw = read(regs["esp"], TOP - regs["esp"])
        assert raw is not None
        got["s"] = Snapshot(
            regs=dict(regs),
            stack=raw,
            pcs=[pc, *(a.ret for a in reversed(stack[1:]))],
            sps=[regs["esp"], *[a.sp + 4 for a in reversed(stack)][:-1]],
        )

    trace(img.path, "x86", "top_a", on_insn)
    return got["s"]


@dataclass
class Crash:
    base: int  # the module's base in the world
    registers: dict[str, int]
    stack_va: int
    stack: bytes
    pcs: list[int]
    sps: list[int]


def _crash(img: Image, snap: Snapshot, module_index: int) -> Crash:
    """The snapshot moved: words in the image to the world module's base, words in the stack to the world's
    crashing stack (the header CONTEXT's esp)."""
    probe = build_kworld("x86", seed=SEED)
    base, stack_va = probe.modules[module_index].base, probe.header_sp
    assert probe.modules[module_index].size >= img.info.size_of_image
    stack_room = probe.cpus[probe.crashing_cpu].stack_base - stack_va
    assert len(snap.stack) <= stack_room, "the chain's stack must fit the world's crashing stack"
    image_base, size, esp = img.info.image_base, img.info.size_of_image, snap.regs["esp"]

    def move(v: int) -> int:
        if image_base <= v < image_base + size:
            return v - image_base + base
        if esp - 0x1000 <= v < TOP + 0x100:
            return v - esp + stack_va
        return v

    words = struct.unpack(f"<{len(snap.stack) // 4}I", snap.stack)
    return Crash(
        base=base,
        registers={n: move(v) for n, v in snap.regs.items()},
        stack_va=stack_va,
        stack=struct.pack(f"<{len(words)}I", *map(move, words)),
        pcs=[move(p) for p in snap.pcs],
        sps=[move(s) for s in snap.sps],
    )


def _write(path: Path, img: Image, crash: Crash) -> Path:
    world = build_kworld("x86", seed=SEED, header_registers=crash.registers)
    assert world.header_sp == crash.stack_va
    for rva, data in img.layout:
        world.space.map(crash.base + rva, data)  # over the world's stand-in header page; new pages for sections
    world.space.write_virtual(crash.stack_va, crash.stack)
    write_kworld(path, world=world, dump_type=1, overwrite=True)
    return path


@pytest.fixture(scope="module")
def nt_image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return _image(tmp_path_factory.mktemp("nt86"), "ntkrnlmp")


@pytest.fixture(scope="module")
def nt_crash(nt_image: Image) -> Crash:
    return _crash(nt_image, _snapshot(nt_image), 0)


@pytest.fixture(scope="module")
def nt_dump(nt_image: Image, nt_crash: Crash, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("dump86") / "kernel.dmp", nt_image, nt_crash)



def _chain(facts: dict) -> list[tuple[int, int, str]]:
    return [
        (int(f["value"], 16), int(f["address"], 16), f["trust"]) for f in facts["stack"]["frames"][: len(FPO_CHAIN)]
    ]


def _want(crash: Crash) -> list[tuple[int, int, str]]:
    return list(zip(crash.pcs, crash.sps, ["context"] + ["cfi"] * (len(FPO_CHAIN) - 1), strict=True))


def test_kernel_fpo_frames_unwind_by_the_served_pdb(
    nt_image: Image, nt_crash: Crash, nt_dump: Path, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = served
    tree.files[f"symbols/{nt_image.key_path('ntkrnlmp')}"] = nt_image.pdb.read_bytes()
    facts = facts_from_dump(nt_dump, symbol_path=f"srv*{tmp_path / 'store'}*{url}").to_dict()
    assert facts["x_symbols"]["method"] == "rsds", facts["x_symbols"]
    assert facts["x_symbols"]["table"] == f"{nt_image.guid}{nt_image.age:X}"
    assert _chain(facts) == _want(nt_crash), facts.get("warnings")
    names = [f.get("function") for f in facts["stack"]["frames"][: len(FPO_CHAIN)]]
    assert names == FPO_CHAIN  # named by the same PDB


def test_kernel_fpo_frames_from_a_local_store(nt_image: Image, nt_crash: Crash, nt_dump: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / nt_image.key_path("ntkrnlmp")).parent.mkdir(parents=True)
    shutil.copy(nt_image.pdb, store / nt_image.key_path("ntkrnlmp"))
    facts = facts_from_dump(nt_dump, symbol_path=str(store)).to_dict()
    assert _chain(facts) == _want(nt_crash)


def test_without_the_pdb_the_chain_is_not_recovered(nt_crash: Crash, nt_dump: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    facts = facts_from_dump(nt_dump, symbol_path=str(tmp_path / "empty")).to_dict()
    assert facts["x_symbols"]["table"] is None
    assert "no kernel symbol table" in (facts["x_symbols"]["reason"] or "") or "not found" in (
        facts["x_symbols"]["reason"] or ""
    )
    assert _chain(facts) != _want(nt_crash)
    frames = facts["stack"]["frames"]
    assert not any(f["trust"] == "cfi" for f in frames)
    trusted = [(int(f["value"], 16), int(f["address"], 16)) for f in frames if f["trust"] != "scan"]
    assert trusted != list(zip(nt_crash.pcs, nt_crash.sps, strict=True))
    assert len(trusted) < len(FPO_CHAIN)


# ---- a driver's image: no kernel table at all, the driver's own PDB by its RSDS record -------------------------
DRIVER = 2  # the world's third module (a driver with room for the image)


@pytest.fixture(scope="module")
def drv_image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return _image(tmp_path_factory.mktemp("drv86"), "fpodrv")


@pytest.fixture(scope="module")
def drv_crash(drv_image: Image) -> Crash:
    return _crash(drv_image, _snapshot(drv_image), DRIVER)


@pytest.fixture(scope="module")
def drv_dump(drv_image: Image, drv_crash: Crash, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("drvdump86") / "kernel.dmp", drv_image, drv_crash)


def test_driver_fpo_frames_unwind_by_its_own_pdb_without_kernel_symbols(
    drv_image: Image, drv_crash: Crash, drv_dump: Path, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = served
    tree.files[f"symbols/{drv_image.key_path('fpodrv')}"] = drv_image.pdb.read_bytes()
    facts = facts_from_dump(drv_dump, symbol_path=f"srv*{tmp_path / 'store'}*{url}").to_dict()
    assert facts["x_symbols"]["table"] is None  # the world's nt has no PDB: no kernel table
    assert f"symbols/{drv_image.key_path('fpodrv')}" in tree.log
    assert _chain(facts) == _want(drv_crash), facts.get("warnings")


def test_driver_pdb_of_another_build_is_refused(
    drv_image: Image, drv_crash: Crash, drv_dump: Path, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    other = _image(tmp_path / "other", "fpodrv", OTHER_EBP_C)
    assert other.guid != drv_image.guid
    url, tree = served
    key = drv_image.key_path("fpodrv")
    tree.files[f"symbols/{key}"] = other.pdb.read_bytes()  # misfiled under this image's key
    facts = facts_from_dump(drv_dump, symbol_path=f"srv*{tmp_path / 'store'}*{url}").to_dict()
    assert f"symbols/{key}" in tree.log  # fetched, then refused
    assert not any(f["trust"] == "cfi" for f in facts["stack"]["frames"])
    want = f"{drv_image.guid}{drv_image.age:X}"
    notes = [w for w in facts["warnings"] if "refused" in w]
    assert any(str(tmp_path / "store" / key) in w and f"the image names {want}" in w for w in notes), notes


def test_damaged_driver_pdb_is_a_warning(
    drv_image: Image, drv_dump: Path, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = served
    key = drv_image.key_path("fpodrv")
    tree.files[f"symbols/{key}"] = drv_image.pdb.read_bytes()[:6000]
    facts = facts_from_dump(drv_dump, symbol_path=f"srv*{tmp_path / 'store'}*{url}").to_dict()
    assert not any(f["trust"] == "cfi" for f in facts["stack"]["frames"])
    assert any("refused: unreadable" in w and "fpodrv.pdb" in w for w in facts["warnings"]), facts["warnings"]


def test_frame_data_api_memoised_and_only_for_resident_images(
    drv_image: Image, drv_crash: Crash, drv_dump: Path, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    from dbgauto.kdump.reader import KernelDump
    from dbgauto.kernel.open import read_parts
    from dbgauto.symbols.context import KernelInputs, SymbolContext
    from dbgauto.symbols.sympath import resolve_symbol_path
    from dbgauto.unwind import Module

    url, tree = served
    key = drv_image.key_path("fpodrv")
    tree.files[f"symbols/{key}"] = drv_image.pdb.read_bytes()
    with KernelDump.open(drv_dump) as d:
        parts = read_parts(d)
        ctx = SymbolContext.build(KernelInputs.from_parts(parts), resolve_symbol_path(f"srv*{tmp_path}*{url}", {}))
        mod = Module("fpodrv", drv_crash.base, drv_image.info.size_of_image)
        table = ctx.frame_data(mod)
        assert table is not None
        leaf = drv_image.info.exports["leaf_c"]
        record = table.lookup(leaf)
        assert record is not None
        assert record.rva == leaf  # a record begins at leaf_c's start
        assert ctx.frame_data(mod) is table
        assert tree.log.count(f"symbols/{key}") == 1  # fetched once
        other = next(m for m in parts.drivers if m.base != drv_crash.base and m.size)
        assert ctx.frame_data(Module(other.base_name, other.base, other.size)) is None  # no image resident there
        assert ctx.frame_data(Module("nowhere", 0x1000, 0x1000)) is None  # outside every module
