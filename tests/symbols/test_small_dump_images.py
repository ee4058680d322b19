"""A small dump unwinds through a driver whose image the symbol path supplies by TimeDateStamp + SizeOfImage.

Small dumps hold no images, so their x64 stacks have no .pdata to unwind by; WinDbg fetches
``name.sys/<TIMESTAMP><SIZEOFIMAGE>/name.sys`` from the symbol path, and dbgauto does too
(``SymbolContext.image``). The world: a synthetic x64 kernel (dbgauto_testkit's kworld) whose third-party driver is
a REAL clang/lld-link image laid out at the driver's base (its loader entry's SizeOfImage set to the image's), stopped
in the image's leaf_c: the top_a → mid_b → frame_d → leaf_c chain run in the unicorn emulator, registers and stack
relocated to the driver's base and the world's crashing stack, written as a Complete dump and turned into a SMALL
dump by dbgauto's own converter. Expectations: the key's TimeDateStamp and SizeOfImage from llvm-readobj, the
frames' pcs from the emulator. An image filed under that key that is another build (other TimeDateStamp and
SizeOfImage) is set aside, never unwound by.
"""

from __future__ import annotations

import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from dbgauto_testkit.dumpinflate.kworld import KWorld, build_kworld, write_kworld
from dbgauto_testkit.winbuild import (
    CHAIN,
    CHAIN_C,
    build,
    image_layout,
    move_run,
    needs_toolchain,
    readobj,
    run_until_break,
)
from symserver import ServedTree

from dbgauto.engines.jobs import convert_dump, facts_from_dump, open_session
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.open import read_parts
from dbgauto.symbols.context import KernelInputs, SymbolContext
from dbgauto.symbols.sympath import resolve_symbol_path

pytestmark = needs_toolchain

SEED = 7
OTHER_C = CHAIN_C + "\n__declspec(dllexport) int other_build(int x) { return x * 11; }\n"
PAD = "\n__declspec(dllexport) volatile char padding[0x3000];\n"  # another SizeOfImage for the other build


@dataclass
class Driver:
    image: Path
    timestamp: int  # llvm-readobj's TimeDateStamp
    size_of_image: int  # llvm-readobj's SizeOfImage
    layout: list[tuple[int, bytes]]


def _driver(tmp: Path, source: str, link_timestamp: int) -> Driver:
    image = build(tmp, "chain", "x64", c_source=source, link=("/dll", "/noentry", f"/timestamp:{link_timestamp}"))
    text = readobj(image, "--file-headers")
    ts = int(re.search(r"TimeDateStamp: .*\((0x[0-9A-Fa-f]+)\)", text).group(1), 16)
    info, layout = image_layout(image)
    return Driver(image, ts, info.size_of_image, layout)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Driver:
    return _driver(tmp_path_factory.mktemp("drv"), CHAIN_C, 0x5F3A1B2C)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Driver:
    return _driver(tmp_path_factory.mktemp("drv_other"), OTHER_C + PAD, 0x61000000)


def _victim(world: KWorld):  # -> kworld Module
    """The world's last module: a third-party driver (kworld appends them after nt, hal and the inbox ones)."""
    return world.modules[-1]


@dataclass
class Crash:
    base: int
    name: str
    registers: dict[str, int]
    stack_va: int
    stack: bytes
    frames: list[tuple[str, int]]  # (function, pc) innermost first, from the emulator


@pytest.fixture(scope="module")
def crash(driver: Driver) -> Crash:
    """The chain's breakpoint state, moved: image words to the driver's base, stack words to the crashing stack."""
    run = run_until_break(driver.image, "x64", "top_a")
    probe = build_kworld("x64", seed=SEED)
    m = _victim(probe)
    assert m.size >= run.info.size_of_image
    moved = move_run(run, CHAIN, m.base, probe.header_sp)
    return Crash(m.base, m.base_name, moved.registers, probe.header_sp, moved.stack, moved.frames)


@pytest.fixture(scope="module")
def small(driver: Driver, crash: Crash, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Complete dump of the world stopped in the real driver, converted to a small dump by dbgauto."""
    tmp = tmp_path_factory.mktemp("dumps")
    world = build_kworld("x64", seed=SEED, header_registers=crash.registers)
    m = _victim(world)
    assert (m.base, world.header_sp) == (crash.base, crash.stack_va)
    for rva, data in driver.layout:
        world.space.map(crash.base + rva, data)  # the real image over the stand-in header page
    # the loader entry says the real image's SizeOfImage, so its header's TimeDateStamp is the driver list's
    world.space.write_virtual(m.entry_va + world.layout.kldr["size"], struct.pack("<I", driver.size_of_image))
    world.space.write_virtual(crash.stack_va, crash.stack)
    write_kworld(tmp / "complete.dmp", world=world, dump_type=1, overwrite=True)
    out = tmp / "small.dmp"
    convert_dump(tmp / "complete.dmp", out)
    return out


@pytest.fixture(scope="module")
def paged_out(driver: Driver, crash: Crash, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Complete dump of the same crash whose driver image is not resident (its header page zeroed, no section
    laid): the loader entry alone gives the TimeDateStamp and SizeOfImage (the real image's)."""
    world = build_kworld("x64", seed=SEED, header_registers=crash.registers)
    m = _victim(world)
    world.space.write_virtual(crash.base, bytes(0x400))
    k = world.layout.kldr
    world.space.write_virtual(m.entry_va + k["size"], struct.pack("<I", driver.size_of_image))
    world.space.write_virtual(m.entry_va + k["timestamp"], struct.pack("<I", driver.timestamp))
    world.space.write_virtual(crash.stack_va, crash.stack)
    path = tmp_path_factory.mktemp("paged") / "complete.dmp"
    write_kworld(path, world=world, dump_type=1, overwrite=True)
    return path



def _key(name: str, d: Driver) -> str:
    return f"{name}/{d.timestamp:08X}{d.size_of_image:x}/{name}"


def _frames(small: Path, symbol_path: str | None) -> list[dict]:
    return facts_from_dump(small, symbol_path=symbol_path).to_dict()["stack"]["frames"]


def test_the_small_dump_names_the_driver_by_the_images_own_identity(small: Path, driver: Driver, crash: Crash) -> None:
    with KernelDump.open(small) as d:
        assert d.dump_type == 4
        parts = read_parts(d)
    drv = next(x for x in parts.drivers if x.base == crash.base)
    assert (drv.timestamp, drv.size) == (driver.timestamp, driver.size_of_image)
    assert drv.base_name.lower() == crash.name.lower()


def test_without_images_the_stack_stops_at_the_context_frame(small: Path, crash: Crash, tmp_path: Path) -> None:
    frames = _frames(small, str(tmp_path / "empty_store"))
    assert int(frames[0]["value"], 16) == crash.frames[0][1]
    assert frames[0]["trust"] == "context"
    assert all(f["trust"] == "scan" for f in frames[1:])


def test_served_image_unwinds_the_small_dumps_stack(
    small: Path, driver: Driver, crash: Crash, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = served
    key = _key(crash.name, driver)
    tree.files[f"symbols/{key}"] = driver.image.read_bytes()
    frames = _frames(small, f"srv*{tmp_path / 'store'}*{url}")
    assert f"symbols/{key}" in tree.log
    got = frames[: len(CHAIN)]
    assert [int(f["value"], 16) for f in got] == [pc for _, pc in crash.frames], (got, crash.frames)
    assert [f["trust"] for f in got] == ["context", "cfi", "cfi", "cfi"]
    assert all(f["module"].lower() in (crash.name.lower(), crash.name.lower().rsplit(".", 1)[0]) for f in got)
    sites = [f"{crash.name.rsplit('.', 1)[0]}+{pc - crash.base:#x}" for _, pc in crash.frames]
    with open_session(small, "native", symbol_path=f"srv*{tmp_path / 'store'}*{url}") as session:
        k_text = session.run("k").output
    positions = [k_text.find(site) for site in sites]
    assert -1 not in positions, k_text
    assert positions == sorted(positions), k_text
    # the downloaded image was stored downstream under its key: a second run needs no server
    assert (tmp_path / "store" / key).is_file()
    frames = _frames(small, str(tmp_path / "store"))
    assert [f["trust"] for f in frames[: len(CHAIN)]] == ["context", "cfi", "cfi", "cfi"]


def test_image_of_another_build_filed_under_the_key_is_set_aside(
    small: Path, driver: Driver, other: Driver, crash: Crash, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    assert (other.timestamp, other.size_of_image) != (driver.timestamp, driver.size_of_image)
    url, tree = served
    key = _key(crash.name, driver)
    tree.files[f"symbols/{key}"] = other.image.read_bytes()  # a store that filed it wrongly
    sp = f"srv*{tmp_path / 'store'}*{url}"
    with KernelDump.open(small) as d:
        ctx = SymbolContext.build(KernelInputs.from_parts(read_parts(d)), resolve_symbol_path(sp, {}))
    assert ctx.image(crash.base) is None
    assert f"symbols/{key}" in tree.log
    assert any("TimeDateStamp/SizeOfImage" in w and "is not used" in w for w in ctx.warnings), ctx.warnings
    facts = facts_from_dump(small, symbol_path=sp).to_dict()
    assert all(f["trust"] == "scan" for f in facts["stack"]["frames"][1:])
    assert any("TimeDateStamp/SizeOfImage" in w for w in facts["warnings"])


def test_image_under_another_key_is_not_asked_for_or_used(
    small: Path, driver: Driver, other: Driver, crash: Crash, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = served
    tree.files[f"symbols/{_key(crash.name, other)}"] = other.image.read_bytes()
    frames = _frames(small, f"srv*{tmp_path / 'store'}*{url}")
    assert f"symbols/{_key(crash.name, other)}" not in tree.log
    assert f"symbols/{_key(crash.name, driver)}" in tree.log  # asked, 404
    assert all(f["trust"] == "scan" for f in frames[1:])


def test_context_image_is_memoised_and_offline_without_a_server(
    small: Path, driver: Driver, crash: Crash, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = served
    key = _key(crash.name, driver)
    tree.files[f"symbols/{key}"] = driver.image.read_bytes()
    with KernelDump.open(small) as d:
        inputs = KernelInputs.from_parts(read_parts(d))
        ctx = SymbolContext.build(inputs, resolve_symbol_path(f"srv*{tmp_path / 'store'}*{url}", {}))
        img = ctx.image(crash.base)
        assert img is not None
        assert (img.base, img.timestamp, img.size_of_image) == (crash.base, driver.timestamp, driver.size_of_image)
        asked = list(tree.log)
        assert ctx.image(crash.frames[2][1]) is img  # any address inside the module; no second fetch
        assert tree.log == asked
        # network=False: the server is never asked, even though the path names it
        tree.log.clear()
        off = SymbolContext.build(inputs, resolve_symbol_path(f"srv*{tmp_path / 'store2'}*{url}", {}), network=False)
        assert off.image(crash.base) is None
        assert tree.log == []


def test_large_dump_without_the_resident_header_takes_the_served_image(
    paged_out: Path, driver: Driver, crash: Crash, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    assert [f["trust"] for f in _frames(paged_out, str(tmp_path / "empty"))[: len(CHAIN)]] != [
        "context", "cfi", "cfi", "cfi"
    ]  # fmt: skip
    url, tree = served
    tree.files[f"symbols/{_key(crash.name, driver)}"] = driver.image.read_bytes()
    got = _frames(paged_out, f"srv*{tmp_path / 'store'}*{url}")[: len(CHAIN)]
    assert [int(f["value"], 16) for f in got] == [pc for _, pc in crash.frames]
    assert [f["trust"] for f in got] == ["context", "cfi", "cfi", "cfi"]


def test_a_served_file_that_is_no_image_is_set_aside_with_a_warning(
    small: Path, driver: Driver, crash: Crash, served: tuple[str, ServedTree], tmp_path: Path
) -> None:
    url, tree = served
    key = _key(crash.name, driver)
    tree.files[f"symbols/{key}"] = b"MZ" + bytes(0x3E)  # e_lfanew 0: no NT headers
    facts = facts_from_dump(small, symbol_path=f"srv*{tmp_path / 'store'}*{url}").to_dict()
    assert f"symbols/{key}" in tree.log
    assert all(f["trust"] == "scan" for f in facts["stack"]["frames"][1:])
    assert any(key.split("/")[-1] in w and "is not used" in w for w in facts["warnings"]), facts["warnings"]


def test_an_absent_image_is_asked_for_once_per_process_until_the_store_changes(
    small: Path,
    driver: Driver,
    crash: Crash,
    served: tuple[str, ServedTree],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch worker sees many dumps naming the same absent images: the server is asked once, not per dump; an
    image then filed in the local store (by hand, or by another process) is used by the next dump once the
    stores are looked at again (STORE_RECHECK_SECONDS, 0 here)."""
    from dbgauto.symbols import context

    monkeypatch.setattr(context, "STORE_RECHECK_SECONDS", 0.0)
    url, tree = served
    key = _key(crash.name, driver)
    store = tmp_path / "store"
    store.mkdir()
    sp = f"srv*{store}*{url}"
    assert all(f["trust"] == "scan" for f in _frames(small, sp)[1:])
    assert tree.log.count(f"symbols/{key}") == 1  # asked, 404
    assert all(f["trust"] == "scan" for f in _frames(small, sp)[1:])
    assert tree.log.count(f"symbols/{key}") == 1  # remembered: not asked again
    (store / key).parent.mkdir(parents=True)
    shutil.copyfile(driver.image, store / key)
    got = _frames(small, sp)[: len(CHAIN)]
    assert [int(f["value"], 16) for f in got] == [pc for _, pc in crash.frames]
    assert [f["trust"] for f in got] == ["context", "cfi", "cfi", "cfi"]
