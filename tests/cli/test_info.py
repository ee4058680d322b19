"""``dbgauto info``: the real CLI in a subprocess (ground truth on the real small dump) and in-process."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dbgauto.cli import cli


def _hex(v: str | int) -> int:
    return int(v, 16) if isinstance(v, str) else v


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dbgauto", "info", *args], capture_output=True, text=True, timeout=120)


def _bitmap_dump(path: Path, present: list[int], bits: int) -> Path:
    """A 64-bit DumpType 6 dump written with struct alone (offsets from dump-format.md §4, §10)."""
    hdr = bytearray(b"PAGE" * 0x800)
    hdr[0:8] = b"PAGEDU64"
    struct.pack_into("<II", hdr, 0x8, 0xF, 22621)
    struct.pack_into("<I", hdr, 0x30, 0x8664)
    struct.pack_into("<I", hdr, 0xF98, 6)
    bm = bytearray((bits + 7) // 8)
    for p in present:
        bm[p >> 3] |= 1 << (p & 7)
    first = 0x2000 + 0x38 + len(bm)
    sub = b"SDMPDUMP" + bytes(0x18) + struct.pack("<QQQ", first, len(present), bits)
    path.write_bytes(bytes(hdr) + sub + bytes(bm) + bytes(0x1000 * len(present)))
    return path


def test_json_on_the_real_small_dump_matches_ground_truth(
    triage_x64_path: Path, groundtruth_x64: dict[str, Any]
) -> None:
    res = _run("--json", str(triage_x64_path))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    [d] = json.loads(res.stdout)
    gt = groundtruth_x64
    assert d["signature"] == gt["signature"]
    assert d["dump_type"] == gt["dump_type"]
    assert _hex(d["major_version"]) == _hex(gt["major_version"])
    assert d["build"] == gt["minor_version_build"]
    assert _hex(d["machine"]) == _hex(gt["machine"])
    assert d["number_processors"] == _hex(gt["number_processors"])
    assert _hex(d["bugcheck_code"]) == _hex(gt["bugcheck_code"])
    assert [_hex(p) for p in d["bugcheck_parameters"]] == [_hex(p) for p in gt["bugcheck_parameters"]]
    for ours, theirs in [
        ("directory_table_base", "DirectoryTableBase"),
        ("pfn_database", "PfnDataBase"),
        ("ps_loaded_module_list", "PsLoadedModuleList"),
        ("ps_active_process_head", "PsActiveProcessHead"),
        ("kd_debugger_data_block", "KdDebuggerDataBlock"),
        ("product_type", "ProductType"),
        ("suite_mask", "SuiteMask"),
        ("required_dump_space", "required_dump_space"),
        ("mini_dump_fields", "mini_dump_fields"),
        ("writer_status", "writer_status"),
        ("kd_secondary_version", "kd_secondary_version"),
    ]:
        assert _hex(d[ours]) == _hex(gt[theirs]), ours
    for ours, theirs in [
        ("secondary_data_state", "SecondaryDataState"),
        ("attributes", "attributes"),
        ("boot_id", "boot_id"),
        ("comment", "comment"),
    ]:
        assert gt[theirs] is None
        assert d[ours] is None, ours  # "PAGE" filler: absent, never a number
    assert d["system_time"]["utc"] == gt["system_time"]["utc"]
    assert _hex(d["system_time"]["raw"]) == _hex(gt["system_time"]["filetime"])
    assert _hex(d["system_uptime"]["raw_100ns"]) == _hex(gt["system_uptime"]["raw_100ns"])
    assert d["system_uptime"]["seconds"] == pytest.approx(gt["system_uptime"]["seconds"])
    assert d["dump_size"] == d["file_size"] == gt["file_size"]
    ex = gt["exception_record"]
    assert _hex(d["exception"]["code"]) == _hex(ex["ExceptionCode"])
    assert _hex(d["exception"]["flags"]) == _hex(ex["ExceptionFlags"])
    assert _hex(d["exception"]["record"]) == _hex(ex["ExceptionRecord"])
    assert _hex(d["exception"]["address"]) == _hex(ex["ExceptionAddress"])
    assert d["exception"]["number_parameters"] == _hex(ex["NumberParameters"])
    regs = d["context"]["registers"]
    seg = {"SegCs": "cs", "SegDs": "ds", "SegEs": "es", "SegFs": "fs", "SegGs": "gs", "SegSs": "ss", "EFlags": "efl"}
    for key, value in gt["context_all"].items():
        if key == "ContextFlags":
            assert _hex(d["context"]["context_flags"]) == _hex(value)
        else:
            assert _hex(regs[seg.get(key, key.lower())]) == _hex(value), key
    assert d["variety"]["name"] == "Small Memory Dump"
    assert d["pages_present"] is None
    assert d["pages_total"] is None
    assert d["bugcheck_name"] == "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M"


def test_small_dump_carries_the_triage_summary(triage_x64_path: Path, groundtruth_x64: dict[str, Any]) -> None:
    res = _run("--json", str(triage_x64_path))
    [d] = json.loads(res.stdout)
    assert isinstance(d["triage"], dict)
    assert d["triage"]
    t = d["triage"]
    proc = groundtruth_x64["process"]
    assert (t["process_name"], t["pid"]) == (proc["image_file_name"], proc["pid"])
    unloaded = groundtruth_x64["unloaded_drivers"]
    assert [(u["name"], _hex(u["start"]), _hex(u["end"])) for u in t["unloaded_drivers"]] == [
        (u["name"], _hex(u["start"]), _hex(u["end"])) for u in unloaded
    ]


def test_human_table_of_the_real_small_dump_shows_its_sections(
    triage_x64_path: Path, groundtruth_x64: dict[str, Any]
) -> None:
    res = CliRunner().invoke(cli, ["info", str(triage_x64_path)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "Small memory dump (triage)" in out
    proc = groundtruth_x64["process"]
    assert f"{proc['image_file_name']} pid {proc['pid']} tid" in out
    unloaded = groundtruth_x64["unloaded_drivers"]
    assert f"Unloaded drivers        : {len(unloaded)}" in out
    for u in unloaded:
        assert f"  {u['start']}-{u['end']}  {u['name']}" in out


def test_exit_codes_and_one_line_failures(tmp_path: Path, triage_x64_path: Path) -> None:
    missing = tmp_path / "missing.dmp"
    junk = tmp_path / "junk.dmp"
    junk.write_bytes(b"not a dump" * 1000)
    res = _run(str(triage_x64_path), str(missing), str(junk))
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert lines == [f"{missing}: no such file", f"{junk}: not a kernel dump: first bytes b'not a du', expected "
                     "b'PAGEDUMP' or b'PAGEDU64'"]  # fmt: skip
    assert "Signature" in res.stdout
    assert "PAGEDU64" in res.stdout
    usage = _run()
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr
    bad_opt = _run("--bogus", str(triage_x64_path))
    assert bad_opt.returncode == 2


def test_json_lists_failures_too(tmp_path: Path) -> None:
    res = _run("--json", str(tmp_path))
    assert res.returncode == 1
    [d] = json.loads(res.stdout)
    assert d["file"] == str(tmp_path)
    assert d["error"]["code"] == "dump_format"
    assert "is a directory" in d["error"]["message"]


def test_in_process_human_table_for_a_bitmap_dump(tmp_path: Path) -> None:
    path = _bitmap_dump(tmp_path / "k.dmp", [1, 2, 3, 100], 4096)
    res = CliRunner().invoke(cli, ["info", str(path)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "Kernel or Automatic Memory Dump" in out
    assert "Pages present / total   : 4 / 4096" in out
    assert "DirectoryTableBase      : (absent)" in out  # filler, not 0x4547415045474150
    assert "0x45474150" not in out
    res = CliRunner().invoke(cli, ["info", "--json", str(path)])
    [d] = json.loads(res.output)
    assert d["dump_type"] == 6
    assert (d["pages_present"], d["pages_total"]) == (4, 4096)
    assert d["physical_memory"]["bitmap"]["signature"] == "SDMP"
    assert d["directory_table_base"] is None
    assert d["bugcheck_parameters"] == [None, None, None, None]
    assert d["context"] is None
    assert d["exception"] is None
    assert d["system_time"] is None


def test_in_process_failure_exit_code(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dmp"
    empty.write_bytes(b"")
    res = CliRunner().invoke(cli, ["info", str(empty)])
    assert res.exit_code == 1
    assert "empty file" in res.output
