"""Benchmark the unwinder and the PE reader (issue 16: verdict for a small dump ≤ 3 ms in-process, warm).

Measures, best and median of several rounds (the machine is shared):
  1. the real small dump: unwind from the exception context (.cxr P4) with the filtered scan (no images);
  2. compiled code: a clang/lld x64 image run in unicorn to a breakpoint, unwound by .pdata (images read
     from memory through a read(va, size) callable, warm caches = one ModuleMap reused) and cold (new images);
  3. PeImage.from_memory + CodeView + exception-table lookup on that image;
  4. a 1 GiB claimed exception directory: one lookup;
  5. ARM64 .pdata/.xdata: clang-built code without frame pointers (10 frames, packed and unpacked unwind data),
     whole walk and per frame, warm;
  6. x86 FPO: clang-built FPO code mixed with EBP frames (5 frames) unwound with the PDB's FrameData, whole walk
     and per frame, warm; and reading the FrameData from the PDB.
Usage: ``python benchmarks/bench_unwind.py [--shared DIR]`` (clang, lld-link, llvm-readobj and unicorn needed for 2-6).
"""

from __future__ import annotations

import argparse
import statistics
import struct
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from timing import rounds  # noqa: E402

from dbgauto.pe import PeImage  # noqa: E402
from dbgauto.unwind import Module, ModuleMap, unwind  # noqa: E402


def show(label: str, times: list[float]) -> None:
    print(f"{label:<58} best {min(times) * 1e6:9.1f} µs   median {statistics.median(times) * 1e6:9.1f} µs")


def real_dump(shared: Path) -> None:
    from dbgauto.kdump.reader import KernelDump
    from dbgauto.kdump.structs.context import CONTEXT_AMD64

    path = shared / "dumps" / "triage_x64.dmp"
    if not path.exists():
        print(f"(skipped: {path} not found)")
        return
    tri = KernelDump.open(path).triage
    params = list(tri.dump_header["bugcheck_parameters"])

    def read(va: int, size: int) -> bytes | None:
        try:
            return tri.memory.read(va, size)
        except Exception:
            return None

    cxr = CONTEXT_AMD64.unpack(read(params[3], CONTEXT_AMD64.size))  # 0x1000007E: P4 is the context record
    mods = ModuleMap([Module(d.name.rsplit("\\", 1)[-1], d.base, d.size) for d in tri.drivers])
    limits = (tri.top_of_stack, tri.top_of_stack + len(tri.stack))
    walk = unwind("x64", cxr, read, mods, exclude=params, stack_limits=limits)
    show(
        f"real small dump: .cxr + filtered scan ({len(walk.frames)} frames)",
        rounds(lambda: unwind("x64", cxr, read, mods, exclude=params, stack_limits=limits), number=50),
    )


def compiled() -> None:
    try:
        from dbgauto_testkit.winbuild import CHAIN_C, build, run_until_break
    except Exception as e:  # pytest or the toolchain missing
        print(f"(skipped compiled-code figures: {e})")
        return
    with tempfile.TemporaryDirectory() as tmp:
        dll = build(Path(tmp), "chain", "x64", c_source=CHAIN_C)
        run = run_until_break(dll, "x64", "top_a")
    # snapshot the emulator's memory so the figures measure the unwinder, not unicorn's mem_read
    base, size = run.info.image_base, run.info.size_of_image
    image = bytes(run.memory.mem_read(base, size))
    sp = run.regs["rsp"]
    from dbgauto_testkit.winbuild import STACK_LOW, STACK_SIZE

    stack = bytes(run.memory.mem_read(sp, STACK_LOW + STACK_SIZE - sp))

    def read(va: int, n: int) -> bytes | None:
        if base <= va and va + n <= base + size:
            return image[va - base : va - base + n]
        if sp <= va and va + n <= sp + len(stack):
            return stack[va - sp : va - sp + n]
        return None

    mods = [Module("chain.dll", base, size)]
    warm = ModuleMap(mods, lambda m: PeImage.from_memory(read, m.base))
    walk = unwind("x64", run.regs, read, warm)
    show(
        f"compiled x64 chain, .pdata, warm ({len(walk.frames)} frames)",
        rounds(lambda: unwind("x64", run.regs, read, warm), number=500),
    )
    show(
        "compiled x64 chain, .pdata, cold (image parsed each time)",
        rounds(
            lambda: unwind("x64", run.regs, read, mods, image_for=lambda m: PeImage.from_memory(read, m.base)),
            number=200,
        ),
    )
    img = PeImage.from_memory(read, base)
    show("PeImage.from_memory (headers + sections)", rounds(lambda: PeImage.from_memory(read, base), number=500))
    tab = img.exception_table()
    show("ExceptionTable.lookup (4 entries)", rounds(lambda: tab.lookup(0x1050), number=2000))
    show("CodeView record", rounds(lambda: img.codeview(), number=2000))

    raw = bytearray(image)
    lfanew = struct.unpack_from("<I", raw, 0x3C)[0]
    struct.pack_into("<I", raw, lfanew + 24 + 0x70 + 3 * 8 + 4, 0x4000_0000)
    huge = PeImage.from_bytes(bytes(raw), mapped=True, base=base)
    htab = huge.exception_table()
    show(
        f"1 GiB claimed .pdata: one lookup ({htab.count} entries kept)", rounds(lambda: htab.lookup(0x1050), number=500)
    )


def _snapshot(dll: Path, arch: str, stop_in: str):
    """Registers and a memory snapshot (image + stack) when execution first reaches ``stop_in``."""
    from dbgauto_testkit.winbuild import STACK_LOW, STACK_SIZE, describe, trace

    info = describe(dll)
    got: dict = {}

    def on_insn(pc, regs, stack, read) -> None:
        if not got and stack[-1].name == stop_in:
            sp = regs["sp" if arch == "arm64" else "esp"]
            got.update(regs=dict(regs), sp=sp, stack=read(sp, STACK_LOW + STACK_SIZE - sp))
            got["image"] = read(info.image_base, info.size_of_image)

    trace(dll, arch, "top_a", on_insn)
    base, sp = info.image_base, got["sp"]

    def read(va: int, n: int) -> bytes | None:
        for start, blob in ((base, got["image"]), (sp, got["stack"])):
            if start <= va and va + n <= start + len(blob):
                return blob[va - start : va - start + n]
        return None

    return info, got["regs"], read


def arm64_pdata() -> None:
    try:
        from dbgauto_testkit.winbuild import PROLOGS_C, build
    except Exception as e:
        print(f"(skipped ARM64 figures: {e})")
        return
    with tempfile.TemporaryDirectory() as tmp:
        dll = build(Path(tmp), "prologs", "arm64", c_source=PROLOGS_C, cflags=("-fomit-frame-pointer",))
        info, regs, read = _snapshot(dll, "arm64", "leaf_c")
    warm = ModuleMap(
        [Module("prologs.dll", info.image_base, info.size_of_image)], lambda m: PeImage.from_memory(read, m.base)
    )
    walk = unwind("arm64", regs, read, warm, allow_scan=False)
    n = len(walk.frames)
    times = rounds(lambda: unwind("arm64", regs, read, warm, allow_scan=False), number=300)
    show(f"ARM64 .pdata/.xdata walk, warm ({n} frames, {[f.trust for f in walk.frames[1:]].count('cfi')} cfi)", times)
    show("ARM64 .pdata/.xdata per frame", [t / max(n - 1, 1) for t in times])


def x86_fpo() -> None:
    try:
        from dbgauto_testkit.winbuild import EBP_C, FPO_C, build_multi
    except Exception as e:
        print(f"(skipped x86 FPO figures: {e})")
        return
    from dbgauto.symbols.fpo import load_frame_data

    with tempfile.TemporaryDirectory() as tmp:
        dbg = ("-g", "-gcodeview")
        dll = build_multi(
            Path(tmp),
            "mixed",
            "x86",
            [("fpo", FPO_C, ("-fomit-frame-pointer", *dbg)), ("ebp", EBP_C, ("-fno-omit-frame-pointer", *dbg))],
        )
        info, regs, read = _snapshot(dll, "x86", "leaf_c")
        pdb = dll.with_suffix(".pdb")
        show("FrameData from the PDB (load_frame_data)", rounds(lambda: load_frame_data(pdb), number=200))
        table = load_frame_data(pdb)
    warm = ModuleMap(
        [Module("mixed.dll", info.image_base, info.size_of_image)], lambda m: PeImage.from_memory(read, m.base)
    )
    kw = {"allow_scan": False, "frame_data": lambda m: table}
    walk = unwind("x86", regs, read, warm, **kw)
    n = len(walk.frames)
    times = rounds(lambda: unwind("x86", regs, read, warm, **kw), number=300)
    show(f"x86 FPO + EBP walk, warm ({n} frames)", times)
    show("x86 FPO per frame", [t / max(n - 1, 1) for t in times])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = ap.parse_args()
    real_dump(args.shared)
    compiled()
    arm64_pdata()
    x86_fpo()


if __name__ == "__main__":
    main()
