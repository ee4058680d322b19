"""The verdict on generated kernel worlds (testkit kworld: x64 build 19041 Kernel bitmap dumps) with what the
issue asks beyond the parameters: 0x1E's faulting context from its trap frame, the saved IRQL from the KPRCB, and
0x9F's blocked-IRP owner. The structures are laid out with offsets read from the ISF tables in ../shared/symbols
at test time (never from dbgauto), and each dump is read through the whole pipeline (open, walk the kernel, facts),
then converted to a small memory dump and read again.
"""

from __future__ import annotations

import dataclasses
import json
import lzma
import struct
from pathlib import Path
from typing import Any

import pytest
from dbgauto_testkit.dumpinflate.kworld import KWorld, build_kworld, write_kworld

from dbgauto.analysis.facts import CrashFacts
from dbgauto.analysis.from_dump import facts_from_parts
from dbgauto.engines import native_commands as fmt
from dbgauto.engines.jobs import convert_dump
from dbgauto.engines.native import NativeSession
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.open import read_parts

SYMBOLS = Path(__file__).resolve().parents[2] / ".." / "shared" / "symbols" / "ntkrnlmp.pdb"
ISF_19041 = SYMBOLS / "5278AFF86C341677D7D7835C85B7B844-1.json.xz"  # 10.0.19041.804 x64 (README there)


@pytest.fixture(scope="module")
def isf() -> dict[str, Any]:
    if not ISF_19041.is_file():
        pytest.skip("no 19041 ISF table in ../shared/symbols")
    with lzma.open(ISF_19041) as fh:
        return json.load(fh)["user_types"]


def _off(types: dict[str, Any], type_name: str, path: str) -> int:
    off = 0
    for part in path.split("."):
        f = types[type_name]["fields"][part]
        off += f["offset"]
        type_name = f["type"].get("name", "")
    return off


def _facts(path: Path) -> CrashFacts:
    with KernelDump.open(path) as dump:
        return facts_from_parts(dump, read_parts(dump), source=None)


def _both(world: KWorld, tmp_path: Path) -> list[CrashFacts]:
    large = write_kworld(tmp_path / "kernel.dmp", world=world, dump_type=6).path
    small = tmp_path / "mini.dmp"
    convert_dump(large, small)
    return [_facts(large), _facts(small)]


def test_0x1e_stack_starts_at_the_faulting_trap_frame(isf: dict[str, Any], tmp_path: Path) -> None:
    w = build_kworld("x64", seed=11, bugcheck=0x1E)
    trap = (w.header_sp + 0x200) & ~0xF
    rsp = trap + isf["_KTRAP_FRAME"]["size"] + 0x48
    fields = {"Rip": w.fault_address, "SegCs": 0x10, "EFlags": 0x10246, "Rsp": rsp, "SegSs": 0x18, "Rbp": rsp + 0x80}
    for name, value in fields.items():
        w.space.write_virtual(trap + _off(isf, "_KTRAP_FRAME", name), struct.pack("<Q", value))
    for f in _both(w, tmp_path):
        assert f.stack is not None
        first = f.stack.frames[0]
        assert (first.value, first.address, first.trust) == (w.fault_address, rsp, "context")
        assert f.experimental["stack_context"] == "trap frame (found by the exception address, P2)"
        assert f.experimental["trap_frame"] == f"{trap:#x}"
        assert f.culprit is not None
        assert (f.culprit.name, f.culprit.rule) == (w.culprit.base_name, "exception-address")
        assert all(fr.address >= rsp for fr in f.stack.frames)  # nothing of the bug check's own frames


def test_0x1e_without_a_trap_frame_keeps_the_dump_context(tmp_path: Path) -> None:
    w = build_kworld("x64", seed=12, bugcheck=0x1E)
    for f in _both(w, tmp_path):
        assert f.experimental["stack_context"] == "dump context"
        assert "trap_frame" not in f.experimental
        assert f.culprit is not None
        assert f.culprit.rule == "exception-address"


@pytest.mark.parametrize("irql", [0, 2, 15])
def test_current_irql_is_the_kprcb_saved_irql(isf: dict[str, Any], tmp_path: Path, irql: int) -> None:
    w = build_kworld("x64", seed=20 + irql, bugcheck=0x3B)  # 0x3B's parameters carry no IRQL
    prcb = w.cpus[w.crashing_cpu].prcb_va
    w.space.write_virtual(prcb + isf["_KPRCB"]["fields"]["DebuggerSavedIRQL"]["offset"], bytes([irql]))
    for f in _both(w, tmp_path):
        assert f.current_irql == irql
        assert f.experimental["irql_source"] == "KPRCB.DebuggerSavedIRQL"


def test_saved_irql_wins_over_the_parameter_and_is_printed(isf: dict[str, Any], tmp_path: Path) -> None:
    w = build_kworld("x64", seed=30, bugcheck=0xD1)  # P2 = 2 (DISPATCH_LEVEL)
    prcb = w.cpus[w.crashing_cpu].prcb_va
    w.space.write_virtual(prcb + isf["_KPRCB"]["fields"]["DebuggerSavedIRQL"]["offset"], bytes([2]))
    large = write_kworld(tmp_path / "d1.dmp", world=w, dump_type=6).path
    assert _facts(large).current_irql == 2
    with NativeSession(large) as s:
        out = s.run("!analyze -v").output
    assert "CURRENT_IRQL:  2" in out


def _place_irp(w: KWorld, isf: dict[str, Any], driver_start: int, name: str) -> int:
    page = w.bugcheck_parameters[3] & ~0xFFF  # the world's mapped pool page
    irp, loc, dev, drv, text = page + 0x100, page + 0x400, page + 0x500, page + 0x600, page + 0x800
    put = w.space.write_virtual
    put(irp + _off(isf, "_IRP", "Tail.Overlay.CurrentStackLocation"), struct.pack("<Q", loc))
    put(loc + _off(isf, "_IO_STACK_LOCATION", "DeviceObject"), struct.pack("<Q", dev))
    put(dev + _off(isf, "_DEVICE_OBJECT", "DriverObject"), struct.pack("<Q", drv))
    put(drv + _off(isf, "_DRIVER_OBJECT", "DriverStart"), struct.pack("<Q", driver_start))
    raw = name.encode("utf-16-le")
    ustr = _off(isf, "_DRIVER_OBJECT", "DriverName")
    buffer = _off(isf, "_UNICODE_STRING", "Buffer")
    put(drv + ustr, struct.pack("<HH", len(raw), len(raw)))
    put(drv + ustr + buffer, struct.pack("<Q", text))
    put(text, raw)
    return irp


def test_0x9f_names_the_driver_that_holds_the_blocked_irp(isf: dict[str, Any], tmp_path: Path) -> None:
    w = build_kworld("x64", seed=40, bugcheck=0x1E)
    stem = w.culprit.base_name.rsplit(".", 1)[0]
    irp = _place_irp(w, isf, w.culprit.base, f"\\Driver\\{stem}")
    w.fields = dataclasses.replace(w.fields, bugcheck_code=0x9F, bugcheck_parameters=(3, 0xFFFF_A000_1234_0000, 0, irp))
    large = write_kworld(tmp_path / "9f.dmp", world=w, dump_type=6).path
    f = _facts(large)
    assert f.culprit is not None
    assert (f.culprit.name, f.culprit.rule) == (w.culprit.base_name, "irp-owner")
    assert f"\\Driver\\{stem}" in (f.culprit.evidence or "")
    assert f.bucket_id == f"DRIVER_POWER_STATE_FAILURE_{stem}"


def test_0x9f_by_driver_name_when_driver_start_is_outside_every_module(isf: dict[str, Any], tmp_path: Path) -> None:
    w = build_kworld("x64", seed=41, bugcheck=0x1E)
    stem = w.culprit.base_name.rsplit(".", 1)[0]
    irp = _place_irp(w, isf, 0xFFFF_F000_0000_0000, f"\\Driver\\{stem}")
    w.fields = dataclasses.replace(w.fields, bugcheck_code=0x9F, bugcheck_parameters=(3, 0, 0, irp))
    f = _facts(write_kworld(tmp_path / "9f.dmp", world=w, dump_type=6).path)
    assert f.culprit is not None
    assert (f.culprit.name, f.culprit.rule) == (w.culprit.base_name, "irp-owner")


def test_kv_of_a_world_without_trap_frames_has_no_annotation(tmp_path: Path) -> None:
    w = build_kworld("x64", seed=13, bugcheck=0xD1)
    large = write_kworld(tmp_path / "d1.dmp", world=w, dump_type=6).path
    with NativeSession(large) as s:
        out = s.run("kv").output
    assert "TrapFrame" not in out
    assert fmt.KV_HEAD in out or "Stack scan" in out
