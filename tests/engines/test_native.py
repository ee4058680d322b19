"""The native engine on the real small dump: its answers equal the ground truth, in the debugger's layout."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dbgauto import debugtext as parsers
from dbgauto.engines.base import split_commands
from dbgauto.engines.native import NativeEngine, NativeSession
from dbgauto.errors import DebuggerCommandError, DumpNotFoundError, EngineError


def _h(value: str) -> int:
    return int(value, 16)


def _tick(value: int) -> str:
    return f"{value >> 32:08x}`{value & 0xFFFFFFFF:08x}"


@pytest.fixture
def session(triage_x64_path: Path) -> Any:
    with NativeEngine().open(triage_x64_path) as s:
        yield s


def test_available_and_capabilities() -> None:
    avail = NativeEngine().available()
    assert avail.ok
    assert avail.version
    assert "native" in avail.version


def test_bugcheck_matches_ground_truth(session: NativeSession, groundtruth_x64: dict[str, Any]) -> None:
    out = session.run(".bugcheck").output
    code = _h(groundtruth_x64["bugcheck_code"])
    params = [_h(p) for p in groundtruth_x64["bugcheck_parameters"]]
    assert out.splitlines()[0] == f"Bugcheck code {code:08X}"
    assert out.splitlines()[1] == "Arguments " + " ".join(_tick(p) for p in params)


def test_vertarget_matches_ground_truth(session: NativeSession, groundtruth_x64: dict[str, Any]) -> None:
    out = session.run("vertarget").output
    gt = groundtruth_x64
    procs = _h(gt["number_processors"])
    assert out.splitlines()[0] == f"Windows 10 Kernel Version {gt['minor_version_build']} MP ({procs} procs) Free x64"
    assert "Product: WinNt, suite: TerminalServer SingleUserTS" in out  # ProductType 1, SuiteMask 0x110
    assert f"PsLoadedModuleList = 0x{_tick(_h(gt['PsLoadedModuleList']))}" in out
    ntos = next(d for d in gt["drivers"] if d["name"].lower().endswith("ntoskrnl.exe"))
    assert f"Kernel base = 0x{_tick(_h(ntos['base']))}" in out
    # 2021-02-21T01:38:22.987765Z and 0x23bc1e9 * 100 ns = 3.747 s
    assert "Debug session time: Sun Feb 21 01:38:22.987 2021 (UTC + 0:00)" in out
    assert "System Uptime: 0 days 0:00:03.747" in out


def test_lm_lists_every_driver(session: NativeSession, groundtruth_x64: dict[str, Any]) -> None:
    out = session.run("lm").output
    assert out.splitlines()[0] == "start             end                 module name"
    rows = {}
    for line in out.splitlines()[1:]:
        m = re.match(r"([0-9a-f]{8}`[0-9a-f]{8}) ([0-9a-f]{8}`[0-9a-f]{8})   (\S+)\s+\(no symbols\)", line)
        if m:
            rows[int(m.group(1).replace("`", ""), 16)] = (int(m.group(2).replace("`", ""), 16), m.group(3))
    drivers = groundtruth_x64["drivers"]
    assert len(rows) == len(drivers)
    for d in drivers:
        base, size = _h(d["base"]), _h(d["size"])
        end, name = rows[base]
        assert end == base + size
        image = d["name"].rsplit("\\", 1)[-1]
        expected = "nt" if image.lower() == "ntoskrnl.exe" else image.rsplit(".", 1)[0]
        assert name == expected
    unloaded = out.split("Unloaded modules:\n", 1)[1].splitlines()
    assert [line.split()[-1] for line in unloaded] == [u["name"] for u in groundtruth_x64["unloaded_drivers"]]


def test_lmv_shows_timestamp_checksum_and_path(session: NativeSession, groundtruth_x64: dict[str, Any]) -> None:
    hal = next(d for d in groundtruth_x64["drivers"] if d["name"].lower().endswith("hal.dll"))
    out = session.run("lmvm hal").output
    assert f"    Image path: {hal['name']}" in out
    assert f"    CheckSum:         {_h(hal['checksum']):08X}" in out
    stamp = next(ln for ln in out.splitlines() if ln.startswith("    Timestamp:"))
    assert f"{_h(hal['timestamp']):08X}" in stamp  # 0x1A7BE8E9 would be 1984: shown as a reproducible-build hash
    assert "reproducible build" in stamp
    assert f"    ImageSize:        {_h(hal['size']):08X}" in out
    assert len([ln for ln in out.splitlines() if "(no symbols)" in ln]) == 1


def test_registers_match_ground_truth(session: NativeSession, groundtruth_x64: dict[str, Any]) -> None:
    out = session.run("r").output
    regs = dict(re.findall(r"\b([a-z0-9]+)=([0-9a-f]+)\b", out))
    for name, value in groundtruth_x64["context_all"].items():
        key = {"EFlags": "efl", "SegCs": "cs", "SegSs": "ss", "SegDs": "ds", "SegEs": "es", "SegFs": "fs"}.get(
            name, name.lower()
        )
        if key in regs:
            assert int(regs[key], 16) == _h(value), key
    assert {"rax", "rip", "rsp", "r15", "efl", "cs"} <= set(regs)
    assert "iopl=0         nv up ei pl zr na po nc" in out  # 0x50246: ZF and PF set ("po", as cdb prints PF=1)
    assert "efl=00050246" in out
    assert session.run("r rip").output == f"rip={_h(groundtruth_x64['context_main']['rip']):016x}\n"


def test_register_unknown_name_is_an_error(session: NativeSession) -> None:
    with pytest.raises(DebuggerCommandError, match="bad register"):
        session.run("r zz9")


def test_analyze_names_bugcheck_process_thread_and_says_no_symbols(
    session: NativeSession, groundtruth_x64: dict[str, Any]
) -> None:
    out = session.run("!analyze -v").output
    assert "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M (1000007e)" in out
    assert "Arg2: fffff8048b58334c, address where exception occurred" in out
    assert f"PROCESS_NAME:  {groundtruth_x64['process']['image_file_name']}" in out
    assert f"PROCESS_ID:  {groundtruth_x64['process']['pid']:x}" in out
    assert f"THREAD_ID:  {groundtruth_x64['thread']['tid']:x}" in out
    assert "no symbols" in out
    assert "STACK_TEXT:" in out


def test_stack_is_labelled_a_scan_and_starts_at_the_crash_context(
    session: NativeSession, groundtruth_x64: dict[str, Any]
) -> None:
    out = session.run("k").output
    assert "Stack scan without symbols" in out
    rows = [ln for ln in out.splitlines() if re.match(r"[0-9a-f]{2} ", ln)]
    rip, rsp = _h(groundtruth_x64["context_main"]["rip"]), _h(groundtruth_x64["context_main"]["rsp"])
    assert rows[0].split()[:3] == ["00", _tick(rsp), _tick(rip)]
    assert len(rows) > 10
    for row in rows[1:]:
        assert re.fullmatch(r"[0-9a-f]{2} [0-9a-f]{8}`[0-9a-f]{8} [0-9a-f]{8}`[0-9a-f]{8} [\w.]+\+0x[0-9a-f]+", row), (
            row
        )


def test_outputs_parse_back_with_the_debugger_output_parsers(session: NativeSession) -> None:
    bc = parsers.parse_bugcheck(session.run(".bugcheck").output)
    assert bc is not None
    assert bc.code == 0x1000007E
    assert bc.parameters[1] == 0xFFFFF8048B58334C
    vt = parsers.parse_vertarget(session.run("vertarget").output)
    assert vt.build == 19041
    assert vt.processors == 16
    assert vt.kernel_base == 0xFFFFF8047BA00000
    mods = parsers.parse_lm(session.run("lm").output)
    assert any(m.name == "nt" and m.start == 0xFFFFF8047BA00000 for m in mods)
    analysis = parsers.parse_analyze(session.run("!analyze -v").output)
    assert analysis.bugcheck_code == 0x1000007E
    assert analysis.bugcheck_name == "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M"
    assert analysis.process_name == "System"
    assert analysis.stack[0].call_site == "amdppm+0x334c"
    assert not analysis.warnings
    frames = parsers.parse_stack(session.run("k").output)
    assert frames[0].module == "amdppm"
    assert frames[0].offset == 0x334C
    banner = parsers.parse_banner(session.banner_text())
    assert banner.dump_variety == "small"
    assert banner.build == 19041
    assert banner.ps_loaded_module_list == 0xFFFFF8047C62A390
    assert banner.debugger_version == session.debugger_version.split()[-1]  # "dbgauto-native X" -> X


def test_echo_and_semicolons(session: NativeSession) -> None:
    assert session.run(".echo hello world").output == "hello world\n"
    assert session.run('.echo "a; b"').output == "a; b\n"
    assert [r.output for r in session.run_many('.echo one; .echo "two; three"; q; .echo never')] == [
        "one\n",
        "two; three\n",
    ]
    # $$ comments end at the next ";", * comments take the rest of the line (the debugger documentation's example)
    assert split_commands("$$ comment; .echo x") == [".echo x"]
    assert split_commands("r eax; $$ some text; r ebx; * more text; r ecx") == ["r eax", "r ebx"]


def test_unknown_commands_name_the_debugger_to_install(session: NativeSession) -> None:
    with pytest.raises(DebuggerCommandError, match=r"not supported by the native engine \(install Debugging Tools"):
        session.run("dt nt!_EPROCESS")
    with pytest.raises(DebuggerCommandError, match="the !process extension"):
        session.run("!process 0 0")


def test_dump_m_writes_a_small_dump_and_refuses_to_overwrite(session: NativeSession, tmp_path: Path) -> None:
    out = tmp_path / "copy.dmp"
    text = session.run(f".dump /m {out}").output
    assert "Dump successfully written" in text
    assert out.read_bytes() == session.dump_path.read_bytes()
    with pytest.raises(DebuggerCommandError, match="exists"):
        session.run(f".dump /m {out}")
    assert "successfully" in session.run(f".dump /m /o {out}").output
    with pytest.raises(DebuggerCommandError, match="/f"):
        session.run(f".dump /f {tmp_path / 'full.dmp'}")


def test_q_closes_the_session(triage_x64_path: Path) -> None:
    s = NativeEngine().open(triage_x64_path)
    assert s.run("q").output == "quit:\n"
    assert s.closed
    with pytest.raises(EngineError, match="closed"):
        s.run("vertarget")


def test_missing_dump_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(DumpNotFoundError):
        NativeEngine().open(tmp_path / "nope.dmp")
