"""The documented culprit rule and the third-party heuristic."""

from __future__ import annotations

from typing import Any

import pytest

from dbgauto.analysis.culprit import find_culprit, is_core_module, looks_third_party
from dbgauto.analysis.facts import DriverFact

NT = DriverFact("ntoskrnl.exe", r"\SystemRoot\system32\ntoskrnl.exe", base=0xFFFFF80000000000, size=0x1000000)
HAL = DriverFact("hal.dll", r"\SystemRoot\system32\hal.dll", base=0xFFFFF80002000000, size=0x10000)
VENDOR = DriverFact("vendor.sys", r"\SystemRoot\System32\drivers\vendor.sys", base=0xFFFFF80010000000, size=0x8000)
OTHER = DriverFact("other.sys", r"\SystemRoot\System32\drivers\other.sys", base=0xFFFFF80020000000, size=0x4000)
DRIVERS = (NT, HAL, VENDOR, OTHER)


def _gt_drivers(groundtruth: dict[str, Any]) -> list[DriverFact]:
    return [
        DriverFact(d["name"].rsplit("\\", 1)[-1], d["name"], int(d["base"], 16), int(d["size"], 16))
        for d in groundtruth["drivers"]
    ]


def test_real_dump_culprit_is_the_module_holding_rip_and_p2(groundtruth_x64: dict[str, Any]) -> None:
    drivers = _gt_drivers(groundtruth_x64)
    rip = int(groundtruth_x64["context_main"]["rip"], 16)
    params = [int(p, 16) for p in groundtruth_x64["bugcheck_parameters"]]
    holder = [d for d in drivers if d.contains(rip) and d.contains(params[1])]
    assert [d.name for d in holder] == ["amdppm.sys"]  # read from the ground truth, independently of the rule
    got = find_culprit(
        pc=rip,
        bugcheck_code=int(groundtruth_x64["bugcheck_code"], 16),
        bugcheck_parameters=params,
        drivers=drivers,
        stack_values=[],
    )
    assert got is not None
    assert (got.name, got.base, got.offset, got.rule) == (
        "amdppm.sys",
        holder[0].base,
        rip - holder[0].base,
        "bugcheck-parameter-2",
    )
    assert not got.is_core


def test_code_address_parameter_beats_pc() -> None:
    got = find_culprit(
        pc=OTHER.base + 0x10,
        bugcheck_code=0xD1,
        bugcheck_parameters=[0x4, 0x2, 0x0, VENDOR.base + 0x123],
        drivers=DRIVERS,
        stack_values=[],
    )
    assert got is not None
    assert (got.name, got.offset, got.rule) == ("vendor.sys", 0x123, "bugcheck-parameter-4")


def test_pc_in_non_core_module_when_parameter_is_in_the_kernel() -> None:
    got = find_culprit(
        pc=VENDOR.base + 0x40,
        bugcheck_code=0x1000007E,
        bugcheck_parameters=[0xC0000005, NT.base + 0x100, 0, 0],
        drivers=DRIVERS,
        stack_values=[OTHER.base + 1],
    )
    assert got is not None
    assert (got.name, got.rule) == ("vendor.sys", "pc")


def test_stack_scan_first_non_core_hit_in_order() -> None:
    got = find_culprit(
        pc=NT.base + 0x500,
        bugcheck_code=0x7F,  # no code-address parameter
        bugcheck_parameters=[8, 0, 0, 0],
        drivers=DRIVERS,
        stack_values=[0x1234, NT.base + 0x10, HAL.base + 0x20, OTHER.base + 0x30, VENDOR.base + 0x40],
    )
    assert got is not None
    assert (got.name, got.offset, got.rule) == ("other.sys", 0x30, "stack-scan")


def test_core_module_only_as_flagged_last_resort() -> None:
    got = find_culprit(
        pc=NT.base + 0x500,
        bugcheck_code=0xE2,
        bugcheck_parameters=[0, 0, 0, 0],
        drivers=DRIVERS,
        stack_values=[NT.base + 0x10, HAL.base + 0x20],
    )
    assert got is not None
    assert (got.name, got.rule, got.is_core) == ("ntoskrnl.exe", "pc-core", True)


def test_nothing_inside_any_module_gives_none_not_ntoskrnl() -> None:
    got = find_culprit(
        pc=0x7FF600001000,
        bugcheck_code=0x1000007E,
        bugcheck_parameters=[0xC0000005, 0xDEAD, 0, 0],
        drivers=DRIVERS,
        stack_values=[1, 2, 3],
    )
    assert got is None
    assert find_culprit(pc=None, bugcheck_code=None, bugcheck_parameters=[], drivers=(), stack_values=()) is None


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


@pytest.mark.parametrize(
    ("path", "third_party"),
    [
        (r"\SystemRoot\System32\drivers\amdppm.sys", False),
        (r"\SystemRoot\system32\ntoskrnl.exe", False),
        (r"\SystemRoot\System32\Drivers\dump_stornvme.sys", False),
        (r"\SystemRoot\System32\DriverStore\FileRepository\umbus.inf_amd64_b78a9c5b6fd62c27\umbus.sys", False),
        (r"\SystemRoot\system32\DRIVERS\npcap.sys", True),
        (r"\??\C:\Windows\system32\drivers\AsIO2.sys", True),
        (r"\??\C:\Program Files\Vendor\ntfs.sys", True),
        (r"\SystemRoot\System32\DriverStore\FileRepository\nv_dispi.inf_amd64_3621da861144492b\nvlddmkm.sys", True),
    ],
)
def test_third_party_heuristic(path: str, third_party: bool) -> None:
    assert looks_third_party(path) is third_party
