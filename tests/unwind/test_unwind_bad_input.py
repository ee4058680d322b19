"""Bad input to the unwinder: looping frame chains, unwind data outside the image, a stack pointer outside
the stack, a 1 GiB claimed unwind table, readers and image sources that raise. Bounded work, warnings,
never an exception."""

from __future__ import annotations

import struct
import time

import pytest
from dbgauto_testkit.winbuild import CHAIN_C, Run, build, run_until_break

from dbgauto.pe import PeImage
from dbgauto.unwind import Module, unwind


@pytest.fixture(scope="module")
def x64_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_until_break(build(tmp_path_factory.mktemp("bad64"), "chain", "x64", c_source=CHAIN_C), "x64", "top_a")


@pytest.fixture(scope="module")
def arm64_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    dll = build(
        tmp_path_factory.mktemp("badarm"), "chain", "arm64", c_source=CHAIN_C, cflags=("-fno-omit-frame-pointer",)
    )
    return run_until_break(dll, "arm64", "top_a")


def _overlay(run: Run, patches: dict[int, bytes]):
    """A reader over the run's memory with some bytes replaced (the damage under test)."""

    def read(va: int, size: int) -> bytes | None:
        got = run.read(va, size)
        if got is None:
            return None
        b = bytearray(got)
        for at, data in patches.items():
            for i, x in enumerate(data):
                if va <= at + i < va + size:
                    b[at + i - va] = x
        return bytes(b)

    return read


class _NoPdata:
    """The image with its exception directory hidden, so ARM64 walks the frame-pointer chain."""

    def __init__(self, img: PeImage) -> None:
        self._img = img

    def __getattr__(self, name: str):
        return getattr(self._img, name)

    def exception_table(self):
        return None


def _mods(run: Run) -> list[Module]:
    return [Module("chain.dll", run.info.image_base, run.info.size_of_image)]


@pytest.mark.parametrize("arch", ["arm64", "x86"])
def test_looping_frame_chain(tmp_path, arch: str) -> None:
    flags = ("-fno-omit-frame-pointer",)
    run = run_until_break(build(tmp_path, "chain", arch, c_source=CHAIN_C, cflags=flags), arch, "top_a")
    ws = 8 if arch == "arm64" else 4
    fp = run.regs["fp" if arch == "arm64" else "ebp"]
    ret = run.read(fp + ws, ws)
    # the frame record points at itself, and a second variant points back down the stack
    for prev in (fp, fp - 0x40):
        read = _overlay(run, {fp: prev.to_bytes(ws, "little"), fp + ws: ret})
        walk = unwind(
            arch,
            run.regs,
            read,
            _mods(run),
            allow_scan=False,
            image_for=lambda m, r=read: _NoPdata(PeImage.from_memory(r, m.base)),  # the chain alone
        )
        assert len(walk.frames) <= 4
        assert any("not above" in w or "loops" in w for w in walk.warnings), walk.warnings


def test_unwind_info_outside_image(x64_run: Run) -> None:
    run = x64_run
    img = PeImage.from_memory(run.read, run.info.image_base)
    pdata = img.directory(3)
    # every RUNTIME_FUNCTION's UnwindInfoAddress → far outside the image
    patches = {run.info.image_base + pdata.rva + 12 * i + 8: struct.pack("<I", 0x7FFFFFF0) for i in range(4)}
    read = _overlay(run, patches)
    walk = unwind(
        "x64", run.regs, read, _mods(run), allow_scan=False, image_for=lambda m: PeImage.from_memory(read, m.base)
    )
    assert len(walk.frames) == 1
    assert any("outside the image" in w for w in walk.warnings), walk.warnings
    # with the scan allowed the walk still continues, labelled scan
    walk = unwind("x64", run.regs, read, _mods(run), image_for=lambda m: PeImage.from_memory(read, m.base))
    assert len(walk.frames) > 1
    assert {f.trust for f in walk.frames[1:]} == {"scan"}


def test_sp_outside_the_stack(x64_run: Run) -> None:
    run = x64_run
    walk = unwind(
        "x64",
        run.regs,
        run.read,
        _mods(run),
        stack_limits=(0x10000, 0x20000),
        image_for=lambda m: PeImage.from_memory(run.read, m.base),
    )
    assert len(walk.frames) == 1
    assert any("outside the stack" in w for w in walk.warnings)


def test_huge_claimed_unwind_table_is_bounded(x64_run: Run) -> None:
    run = x64_run
    img = PeImage.from_memory(run.read, run.info.image_base)
    dir_off = _dir_offset(img, 3)
    reads = []
    read = _overlay(run, {run.info.image_base + dir_off + 4: struct.pack("<I", 0x4000_0000)})

    def counting(va: int, size: int):
        reads.append(size)
        return read(va, size)

    t0 = time.perf_counter()
    walk = unwind("x64", run.regs, counting, _mods(run), image_for=lambda m: PeImage.from_memory(counting, m.base))
    assert time.perf_counter() - t0 < 5  # generous: the point is "not a gigabyte"; measured in benchmarks/
    assert sum(reads) < 4 << 20
    assert any("past the image end" in w for w in walk.warnings), walk.warnings
    assert [f.trust for f in walk.frames] == ["context", "cfi", "cfi", "cfi"]  # the real entries still work


def _dir_offset(img: PeImage, index: int) -> int:
    raw = img.read_rva(0, 0x400)
    lfanew = struct.unpack_from("<I", raw, 0x3C)[0]
    return lfanew + 24 + 0x70 + index * 8


def test_readers_and_image_sources_that_raise(x64_run: Run) -> None:
    run = x64_run

    def flaky(va: int, size: int) -> bytes:
        raise RuntimeError("device error")

    def bad_image(m: Module) -> PeImage:
        raise OSError("image store offline")

    walk = unwind("x64", run.regs, flaky, _mods(run), image_for=bad_image)
    assert len(walk.frames) == 1
    walk = unwind("x64", run.regs, run.read, _mods(run), image_for=bad_image)
    assert any("image store offline" in w for w in walk.warnings)


def test_bad_arguments_never_raise(x64_run: Run) -> None:
    assert unwind("mips", {}, x64_run.read, []).warnings
    assert unwind("x64", {"rax": 1}, x64_run.read, []).warnings
    walk = unwind("x64", {"rip": 2**64 - 1, "rsp": 2**64 - 8}, x64_run.read, _mods(x64_run), max_frames=10**9)
    assert len(walk.frames) == 1


def test_arm64_chain_with_stale_lr(arm64_run: Run) -> None:
    """An LR pointing into the innermost function itself (stale) is not reported as a caller."""
    run = arm64_run
    regs = dict(run.regs)
    regs["lr"] = regs["pc"] + 4
    walk = unwind(
        "arm64", regs, run.read, _mods(run), allow_scan=False, image_for=lambda m: PeImage.from_memory(run.read, m.base)
    )
    assert all(f.pc != regs["lr"] for f in walk.frames[1:])
