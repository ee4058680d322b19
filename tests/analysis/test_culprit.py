"""The attribution table and fallback chain of the culprit, and the bucket id built from it.

Expectations come from Microsoft's bug check reference (which parameter is a code address, an IRP, an IRQL),
from the real dump's ground truth (../shared/groundtruth/triage_x64.json), and, for 0x4A, from the issue's
WinDbg reading of a real NotMyFault dump (``nt!KiSystemServiceExitPico`` on behalf of the process).
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from dbgauto.analysis.bucket import bucket_id, failure_class
from dbgauto.analysis.culprit import find_culprit, is_core_module
from dbgauto.analysis.facts import DriverFact, FrameFact
from dbgauto.analysis.naming import ModuleSymbolizer, Symbolizer

NT = DriverFact("ntoskrnl.exe", r"\SystemRoot\system32\ntoskrnl.exe", base=0xFFFFF80000000000, size=0x1000000)
HAL = DriverFact("hal.dll", r"\SystemRoot\system32\hal.dll", base=0xFFFFF80002000000, size=0x10000)
NTFS = DriverFact("Ntfs.sys", r"\SystemRoot\System32\Drivers\Ntfs.sys", base=0xFFFFF80008000000, size=0x8000)
VENDOR = DriverFact("vendor.sys", r"\SystemRoot\System32\drivers\vendor.sys", base=0xFFFFF80010000000, size=0x8000)
OTHER = DriverFact("other.sys", r"\??\C:\Program Files\Other\other.sys", base=0xFFFFF80020000000, size=0x4000)
DRIVERS = (NT, HAL, NTFS, VENDOR, OTHER)


def _frames(*entries: tuple[DriverFact, int, str | None, str]) -> list[FrameFact]:
    out = []
    for i, (drv, off, function, trust) in enumerate(entries):
        assert drv.base is not None
        out.append(
            FrameFact(i, 0xFFFF8000_00001000 + 0x40 * i, drv.base + off, drv.name, off, trust=trust, function=function)
        )
    return out


def _gt_drivers(groundtruth: dict[str, Any]) -> list[DriverFact]:
    return [
        DriverFact(d["name"].rsplit("\\", 1)[-1], d["name"], int(d["base"], 16), int(d["size"], 16))
        for d in groundtruth["drivers"]
    ]


def test_real_dump_exception_address(groundtruth_x64: dict[str, Any]) -> None:
    drivers = _gt_drivers(groundtruth_x64)
    rip = int(groundtruth_x64["context_main"]["rip"], 16)
    params = [int(p, 16) for p in groundtruth_x64["bugcheck_parameters"]]
    holder = [d for d in drivers if d.contains(params[1])]
    assert [d.name for d in holder] == ["amdppm.sys"]
    got = find_culprit(
        pc=rip, bugcheck_code=int(groundtruth_x64["bugcheck_code"], 16), bugcheck_parameters=params, drivers=drivers
    )
    assert got is not None
    assert (got.name, got.module, got.base, got.offset, got.rule) == (
        "amdppm.sys",
        "amdppm",
        holder[0].base,
        params[1] - holder[0].base,
        "exception-address",
    )
    assert got.evidence == "the exception address (parameter 2) lies in amdppm.sys"
    assert bucket_id(0x1000007E, got) == "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M_amdppm"
    assert failure_class(got) == "windows-component"  # amdppm.sys ships with Windows


def test_faulting_instruction_parameter_beats_pc() -> None:
    assert VENDOR.base is not None
    got = find_culprit(
        pc=OTHER.base + 0x10,  # type: ignore[operator]
        bugcheck_code=0xD1,
        bugcheck_parameters=[0x4, 0x2, 0x0, VENDOR.base + 0x123],
        drivers=DRIVERS,
    )
    assert got is not None
    assert (got.name, got.offset, got.rule) == ("vendor.sys", 0x123, "faulting-instruction")
    assert "parameter 4" in (got.evidence or "")


def test_faulting_pc_when_the_parameter_is_in_the_kernel() -> None:
    got = find_culprit(
        pc=VENDOR.base + 0x40,  # type: ignore[operator]
        bugcheck_code=0x1000007E,
        bugcheck_parameters=[0xC0000005, NT.base + 0x100, 0, 0],  # type: ignore[operator]
        drivers=DRIVERS,
    )
    assert got is not None
    assert (got.name, got.rule) == ("vendor.sys", "faulting-pc")


def test_stack_prefers_third_party_and_labels_scans() -> None:
    frames = _frames(
        (NT, 0x500, None, "context"),
        (NTFS, 0x20, None, "cfi"),
        (OTHER, 0x30, None, "cfi"),
        (VENDOR, 0x40, None, "scan"),
    )
    got = find_culprit(bugcheck_code=0x7F, bugcheck_parameters=[8, 0, 0, 0], drivers=DRIVERS, frames=frames, pc=None)
    assert got is not None
    assert (got.name, got.offset, got.rule) == ("other.sys", 0x30, "stack-frame")
    assert failure_class(got) == "third-party-driver"
    scanned = find_culprit(
        bugcheck_code=0x7F, bugcheck_parameters=[8, 0, 0, 0], drivers=DRIVERS, frames=[frames[0], frames[3]]
    )
    assert scanned is not None
    assert (scanned.name, scanned.rule) == ("vendor.sys", "stack-scan")
    inbox_only = find_culprit(bugcheck_code=0x7F, bugcheck_parameters=[8, 0, 0, 0], drivers=DRIVERS, frames=frames[:2])
    assert inbox_only is not None
    assert (inbox_only.name, inbox_only.rule) == ("Ntfs.sys", "stack-frame")


def test_system_service_fault_blames_the_process_past_the_plumbing() -> None:
    frames = _frames(
        (NT, 0x3F5E10, "KeBugCheckEx", "context"),
        (NT, 0x40A2E9, "KiBugCheckDispatch", "cfi"),
        (NT, 0x40A0B4, "KiSystemServiceExitPico", "cfi"),
    )
    got = find_culprit(
        bugcheck_code=0x4A,
        bugcheck_parameters=[0x7FFB_1234_5678, 2, 0, 0xFFFF_A000_0000_1000],
        drivers=DRIVERS,
        frames=frames,
        pc=frames[0].value,
        process_name="notmyfault64.exe",
    )
    assert got is not None
    assert (got.name, got.rule, got.module, got.function) == (
        "notmyfault64.exe",
        "system-service-process",
        "nt",
        "KiSystemServiceExitPico",
    )
    assert bucket_id(0x4A, got) == "IRQL_GT_ZERO_AT_SYSTEM_SERVICE_notmyfault64.exe_nt!KiSystemServiceExitPico"
    assert failure_class(got) == "process"
    # without symbols: the first two kernel frames of the bug check's own context are skipped by position
    bare = [FrameFact(f.index, f.address, f.value, f.module, f.offset, trust=f.trust) for f in frames]
    got = find_culprit(
        bugcheck_code=0x4A,
        bugcheck_parameters=[0, 2, 0, 0],
        drivers=DRIVERS,
        frames=bare,
        process_name="notmyfault64.exe",
        plumbing_by_position=2,
    )
    assert got is not None
    assert (got.address, got.offset, got.function) == (frames[2].value, 0x40A0B4, None)
    assert bucket_id(0x4A, got) == "IRQL_GT_ZERO_AT_SYSTEM_SERVICE_notmyfault64.exe_nt"


def test_dpc_watchdog_names_the_routine_below_the_clock_interrupt() -> None:
    frames = _frames(
        (NT, 0x100, "KeBugCheckEx", "context"),
        (NT, 0x200, "KeAccumulateTicks", "cfi"),
        (HAL, 0x300, "HalpTimerClockInterrupt", "cfi"),
        (VENDOR, 0x1234, "VendorDpcRoutine", "cfi"),
        (NT, 0x400, "KiRetireDpcList", "cfi"),
    )
    got = find_culprit(bugcheck_code=0x133, bugcheck_parameters=[0, 0x501, 0x500, 0], drivers=DRIVERS, frames=frames)
    assert got is not None
    assert (got.name, got.rule, got.function, got.offset) == ("vendor.sys", "dpc-routine", "VendorDpcRoutine", 0x1234)
    assert bucket_id(0x133, got) == "DPC_WATCHDOG_VIOLATION_vendor!VendorDpcRoutine"


def test_power_irp_owner_follows_the_public_x64_layout() -> None:
    # IRP.Tail.Overlay.CurrentStackLocation +0xB8, IO_STACK_LOCATION.DeviceObject +0x28,
    # DEVICE_OBJECT.DriverObject +0x8, DRIVER_OBJECT.DriverStart +0x18 (Vergilius Project, x64 Windows 10)
    irp, loc, dev, drv = 0xFFFFA000_00010000, 0xFFFFA000_00010200, 0xFFFFA000_00020000, 0xFFFFA000_00030000
    memory = {irp + 0xB8: loc, loc + 0x28: dev, dev + 0x8: drv, drv + 0x18: VENDOR.base}

    def read(va: int, size: int) -> bytes | None:
        v = memory.get(va)
        return None if v is None else struct.pack("<Q", v)[:size]

    got = find_culprit(
        bugcheck_code=0x9F, bugcheck_parameters=[3, 0xFFFFA000_00040000, 0, irp], drivers=DRIVERS, read=read
    )
    assert got is not None
    assert (got.name, got.rule) == ("vendor.sys", "irp-owner")
    assert find_culprit(bugcheck_code=0x9F, bugcheck_parameters=[3, 0, 0, irp + 8], drivers=DRIVERS, read=read) is None


def test_hardware_and_memory_corruption_classes() -> None:
    hw = find_culprit(
        bugcheck_code=0x124, bugcheck_parameters=[0, 0xFFFF_A000_0000_0000, 0xB2000000, 0x1000], drivers=DRIVERS
    )
    assert hw is not None
    assert (hw.name, hw.rule, failure_class(hw)) == ("hardware", "hardware", "hardware")
    assert bucket_id(0x124, hw) == "WHEA_UNCORRECTABLE_ERROR_hardware"
    only_nt = _frames((NT, 0x10, None, "context"), (NT, 0x20, None, "cfi"))
    mc = find_culprit(bugcheck_code=0x1A, bugcheck_parameters=[0x41790, 0, 0, 0], drivers=DRIVERS, frames=only_nt)
    assert mc is not None
    assert (mc.name, failure_class(mc)) == ("memory_corruption", "memory-corruption")
    assert bucket_id(0x1A, mc) == "MEMORY_MANAGEMENT_memory_corruption"
    with_driver = only_nt + _frames((NT, 0, None, "cfi"), (VENDOR, 0x77, None, "cfi"))[1:]
    blamed = find_culprit(
        bugcheck_code=0x1A, bugcheck_parameters=[0x41790, 0, 0, 0], drivers=DRIVERS, frames=with_driver
    )
    assert blamed is not None
    assert blamed.name == "vendor.sys"


def test_core_module_only_as_flagged_last_resort_and_none_outside_modules() -> None:
    got = find_culprit(
        pc=NT.base + 0x500,  # type: ignore[operator]
        bugcheck_code=0xE2,
        bugcheck_parameters=[0, 0, 0, 0],
        drivers=DRIVERS,
        stack_values=[NT.base + 0x10, HAL.base + 0x20],  # type: ignore[operator]
    )
    assert got is not None
    assert (got.name, got.rule, got.is_core) == ("ntoskrnl.exe", "pc-core", True)
    none = find_culprit(
        pc=0x7FF600001000, bugcheck_code=0x1000007E, bugcheck_parameters=[0xC0000005, 0xDEAD, 0, 0], drivers=DRIVERS
    )
    assert none is None
    assert find_culprit(bugcheck_code=None, bugcheck_parameters=[], drivers=()) is None
    assert bucket_id(0xE2, None) == "MANUALLY_INITIATED_CRASH_unknown"


class _Pdb:
    """A symbolizer as the symbols layer provides one: vendor.sys has VendorRead at 0x100..0x200."""

    def name(self, address: int) -> tuple[str, str | None, int] | None:
        assert VENDOR.base is not None
        rva = address - VENDOR.base
        if 0x100 <= rva < 0x200:
            return ("vendor.sys", "VendorRead", rva - 0x100)
        return None


def test_symbolizer_names_the_function_and_the_bucket_never_holds_addresses() -> None:
    assert isinstance(_Pdb(), Symbolizer)
    params = [0xFFFF_F000_0000_0010, 2, 0, VENDOR.base + 0x180]  # type: ignore[operator]
    got = find_culprit(bugcheck_code=0xD1, bugcheck_parameters=params, drivers=DRIVERS, symbolizer=_Pdb())
    assert got is not None
    assert (got.function, got.offset) == ("VendorRead", 0x80)
    assert bucket_id(0xD1, got) == "DRIVER_IRQL_NOT_LESS_OR_EQUAL_vendor!VendorRead"
    plain = find_culprit(bugcheck_code=0xD1, bugcheck_parameters=params, drivers=DRIVERS)
    assert plain is not None
    # without symbols: the function start from unwind data, else the module alone; never the faulting address
    assert bucket_id(0xD1, plain, function_start=0x100) == "DRIVER_IRQL_NOT_LESS_OR_EQUAL_vendor+0x100"
    assert bucket_id(0xD1, plain) == "DRIVER_IRQL_NOT_LESS_OR_EQUAL_vendor"
    assert ModuleSymbolizer([("vendor.sys", VENDOR.base, VENDOR.size)]).name(VENDOR.base + 5) == ("vendor.sys", None, 5)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("name", "core"),
    [
        (r"\SystemRoot\system32\ntoskrnl.exe", True),
        ("ntkrnlmp.exe", True),
        ("hal.dll", True),
        ("kdcom.dll", True),
        ("kd_02_10ec.dll", True),
        ("nt", True),
        ("amdppm.sys", False),
        ("halfdriver.sys", False),
        ("kdnic.sys", False),
        ("Ntfs.sys", False),
    ],
)
def test_is_core_module(name: str, core: bool) -> None:
    assert is_core_module(name) is core
