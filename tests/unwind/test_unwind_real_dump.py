"""The unwinder on the real Windows-written small dump: no images are in a small dump, so after the context
frame only the module-range-filtered scan can run. Expectations from ../shared/groundtruth/triage_x64.json
(bugcheck 0x1000007E: P2 = the exception address, P4 = the context record the kernel saved)."""

from __future__ import annotations

import json
from pathlib import Path

from dbgauto.kdump.reader import KernelDump
from dbgauto.kdump.structs.context import CONTEXT_AMD64
from dbgauto.unwind import Module, unwind


def test_exception_context_and_filtered_scan(triage_x64_path: Path, shared_dir: Path) -> None:
    truth = json.loads((shared_dir / "groundtruth" / "triage_x64.json").read_text())
    params = [int(p, 16) for p in truth["bugcheck_parameters"]["value"]]
    tri = KernelDump.open(triage_x64_path).triage
    low, high = tri.top_of_stack, tri.top_of_stack + len(tri.stack)

    def read(va: int, size: int) -> bytes | None:
        try:
            return tri.memory.read(va, size)
        except Exception:
            return None

    cxr = CONTEXT_AMD64.unpack(read(params[3], CONTEXT_AMD64.size))  # .cxr P4
    mods = [Module(d.name.rsplit("\\", 1)[-1], d.base, d.size) for d in tri.drivers]
    walk = unwind("x64", cxr, read, mods, exclude=params, stack_limits=(low, high))
    f0 = walk.frames[0]
    assert (f0.trust, f0.pc, f0.module) == ("context", params[1], "amdppm.sys")
    assert len(walk.frames) > 1
    assert {f.trust for f in walk.frames[1:]} == {"scan"}
    for prev, f in zip(walk.frames, walk.frames[1:], strict=False):
        assert f.sp > prev.sp
        assert low <= f.sp <= high
        assert f.module is not None
        assert f.pc not in params
    # the dump's own context is that same exception context (rizin `dr` agrees); it unwinds identically
    ctx = {k: int(v, 16) for k, v in truth["context_main"]["value"].items()}
    own = unwind("x64", tri.context.registers, read, mods, exclude=params, stack_limits=(low, high))
    assert (own.frames[0].pc, own.frames[0].sp) == (ctx["rip"], ctx["rsp"])
    assert own.pcs() == walk.pcs()
