"""Inflated large dumps of the real small dump (generated once per session into a temp folder) and their
conversions. The inflater (dbgauto_testkit.dumpinflate) parses the real file itself, independently of dbgauto."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dbgauto_testkit import dumpinflate


@dataclass
class Case:
    name: str
    inflated: Any  # dumpinflate.Inflated
    output: Path
    result: Any  # ConvertResult


VARIANTS: dict[str, dict[str, Any]] = {
    "complete": {"dump_type": 1},
    "kernel-bitmap": {"dump_type": 6},
    "summary-type2": {"dump_type": 2},
    "encoded-kdbg": {"dump_type": 1, "encoded": True},
    "scattered-large-pages": {"dump_type": 6, "placement": "scattered", "large_pages": True, "seed": 7},
    "active-bitmap-padded": {
        "dump_type": 5,
        "placement": "scattered",
        "ram_bytes": 16 << 30,
        "present_fraction": 0.01,
        "seed": 3,
    },
}


@pytest.fixture(scope="session")
def small(triage_x64_path: Path) -> Any:
    return dumpinflate.parse(triage_x64_path)


@pytest.fixture(scope="session")
def inflated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inflated")


@pytest.fixture(scope="session")
def cases(small: Any, triage_x64_path: Path, inflated_dir: Path) -> dict[str, Case]:
    from dbgauto.engines.jobs import convert_dump

    out: dict[str, Case] = {}
    for name, options in VARIANTS.items():
        src = inflated_dir / f"{name}.dmp"
        inf = dumpinflate.inflate(triage_x64_path, src, small=small, **options)
        res = convert_dump(src, inflated_dir / f"{name}.mini.dmp")
        out[name] = Case(name, inf, res.output, res)
    return out


@pytest.fixture(params=list(VARIANTS))
def case(request: pytest.FixtureRequest, cases: dict[str, Case]) -> Case:
    return cases[request.param]
