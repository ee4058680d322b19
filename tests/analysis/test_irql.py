"""CURRENT_IRQL from the KPRCB: the per-build DebuggerSavedIRQL offsets against the six ISF tables (builds from
../shared/symbols/README.md), and the real small dump's value against the byte at the ground truth's PrcbOffset
plus the ISF offset, read straight from the file."""

from __future__ import annotations

import json
import lzma
import re
from pathlib import Path
from typing import Any

import pytest

from dbgauto.analysis.from_dump import facts_from_parts
from dbgauto.kdump.constants import Machine
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.irql import DEBUGGER_SAVED_IRQL_X64, debugger_saved_irql, saved_irql_offset
from dbgauto.kernel.open import read_parts

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SYMBOLS = SHARED / "symbols" / "ntkrnlmp.pdb"


def _tables() -> list[tuple[int, dict[str, Any]]]:
    readme = (SHARED / "symbols" / "README.md").read_text(encoding="utf-8") if SYMBOLS.is_dir() else ""
    builds = {m[1]: int(m[2]) for m in re.finditer(r"`([0-9A-F]{32}-\d+)\.json\.xz` \| 10\.0\.(\d+)\.\d+ x64", readme)}
    builds |= {m[1]: int(m[2]) for m in re.finditer(r"`([0-9A-F]{32}-\d+)\.json\.xz` \| 6\.\d\.(\d+)\.\d+ x64", readme)}
    out = []
    for path in sorted(SYMBOLS.glob("*.json.xz")):
        with lzma.open(path) as fh:
            out.append((builds[path.name.removesuffix(".json.xz")], json.load(fh)["user_types"]))
    if not out:
        pytest.skip("no ntkrnlmp ISF tables in ../shared/symbols")
    return out


def test_per_build_offsets_match_every_isf_table() -> None:
    tables = _tables()
    assert len(tables) == 6
    seen = set()
    for build, types in tables:
        off = types["_KPRCB"]["fields"]["DebuggerSavedIRQL"]["offset"]
        assert DEBUGGER_SAVED_IRQL_X64[build] == off, build
        assert saved_irql_offset(Machine.AMD64, build) == off
        seen.add(build)
    assert seen == set(DEBUGGER_SAVED_IRQL_X64)


def test_table_offset_wins_and_bad_values_are_unknown() -> None:
    prcb = bytearray(0x100)
    prcb[0x10], prcb[0x20] = 2, 99
    assert debugger_saved_irql(prcb, Machine.AMD64, 19041, 0x10) == 2
    assert debugger_saved_irql(prcb, Machine.AMD64, 19041, 0x20) is None  # not an x64 IRQL
    assert debugger_saved_irql(prcb, Machine.AMD64, 19041) is None  # 0x7E98 is beyond this copy
    assert debugger_saved_irql(prcb, Machine.AMD64, 12345) is None  # no row for the build, no table
    assert debugger_saved_irql(prcb, Machine.ARM64, 22000) is None  # ARM64 needs a table
    assert debugger_saved_irql(None, Machine.AMD64, 19041, 0x10) is None


def test_real_small_dump_irql_is_the_saved_byte(groundtruth_x64: dict[str, Any], triage_x64_path: Path) -> None:
    tables = dict(_tables())
    off = tables[19041]["_KPRCB"]["fields"]["DebuggerSavedIRQL"]["offset"]
    prcb_offset = int(groundtruth_x64["triage_header"]["PrcbOffset"], 16)
    raw = triage_x64_path.read_bytes()
    expected = raw[prcb_offset + off]
    with KernelDump.open(triage_x64_path) as dump:
        f = facts_from_parts(dump, read_parts(dump), source=None)
    assert f.current_irql == expected == 0  # PASSIVE_LEVEL before the 0x1000007E (WinDbg's text is not in ../shared)
    assert f.experimental["irql_source"] == "KPRCB.DebuggerSavedIRQL"
