"""An independent check of the inflater: kdmp-parser (a peer, not dbgauto) reads the inflated dumps and finds the
real KPRCB, ETHREAD and EPROCESS bytes at the addresses the real small dump implies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kdmp_peer import read_virtual

from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.smalldump import kernel_view, parts_from_triage

kdmp_parser = pytest.importorskip("kdmp_parser")

def _kv(tri: Any) -> dict[str, Any]:
    """What the kernel layer establishes from the small dump's copies (addresses, identity, stack scan)."""
    return kernel_view(parts_from_triage(tri))



@pytest.fixture(scope="module")
def implied(triage_x64_path: Path) -> dict[str, Any]:
    """VAs and bytes as the real small dump implies them (dbgauto's small-dump reader of the real file)."""
    with KernelDump.open(triage_x64_path) as d:
        tri = d.triage
        return {
            "dtb": d.header.directory_table_base,
            "kdbg_va": d.header.kd_debugger_data_block,
            "prcb": (_kv(tri)["prcb_address"], tri.prcb),
            "thread": (_kv(tri)["thread_address"], tri.thread),
            "process": (_kv(tri)["process_address"], tri.process),
            "stack": (tri.header.top_of_stack, tri.stack),
            "kdbg": tri.kdbg.raw if tri.kdbg is not None else None,
        }


def test_kdmp_parser_finds_real_structures(case: Any, implied: dict[str, Any]) -> None:
    if case.inflated.dump_type == 2:
        pytest.skip("kdmp-parser does not open DumpType 2 (it reads 1, 5, 6, 8, 9, 0xA)")
    parser = kdmp_parser.KernelDumpParser(str(case.inflated.path))
    dtb = implied["dtb"]
    assert parser.directory_table_base == dtb
    for name in ("prcb", "thread", "process", "stack"):
        va, data = implied[name]
        assert va is not None
        assert data
        assert read_virtual(parser, va, len(data), dtb) == data, name
    kdbg = read_virtual(parser, implied["kdbg_va"], len(implied["kdbg"]), dtb)
    if case.name == "encoded-kdbg":
        assert kdbg[0x10:0x14] != b"KDBG"
    else:
        assert kdbg == implied["kdbg"]
    assert implied["prcb"][0] == 0xFFFFF804782D4180
    assert implied["thread"][0] == 0xFFFFC08BDE9E1640
    assert implied["process"][0] == 0xFFFFC08BDCE94180
