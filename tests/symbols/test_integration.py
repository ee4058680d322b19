"""The symbol layer in the product: SymbolContext over the real small dump and the six real ISF tables, the
native engine's k/ln/x/dt, facts, doctor, ``dbgauto symbols`` against a loopback server, bad symbol files.

Expectations come from the tables' own JSON (read here with lzma+json), the data's README (which table is the
dump's kernel), the issue's WinDbg frames, the ground truth of the dump (System, pid 4, tid 264), and
llvm-readobj for images built here with clang/lld.
"""

from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from dbgauto_testkit.winbuild import CHAIN_C, build, describe, readobj
from symserver import ServedTree

from dbgauto.analysis.facts import CrashFacts
from dbgauto.engines.jobs import facts_from_dump
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.open import read_parts
from dbgauto.symbols.context import DumpModule, KernelInputs, SymbolContext
from dbgauto.symbols.sympath import resolve_symbol_path

SHARED = Path(os.environ.get("DBGAUTO_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
SYMBOLS = SHARED / "symbols"
DUMP = SHARED / "dumps" / "triage_x64.dmp"
MATCH = "5278AFF86C341677D7D7835C85B7B844"
FRAMES = ("nt!RtlDispatchException+0x297", "nt!_C_specific_handler+0xa2")  # as WinDbg names them (issue 11)

needs_shared = pytest.mark.skipif(not SYMBOLS.is_dir() or not DUMP.is_file(), reason="../shared symbols/dump absent")


def _isf(guid: str = MATCH) -> dict[str, Any]:
    with lzma.open(SYMBOLS / "ntkrnlmp.pdb" / f"{guid}-1.json.xz") as fh:
        return json.loads(fh.read())


def _process_va() -> int:
    """The crashing thread's process: ETHREAD.Tcb.ApcState.Process, offsets from the table's own JSON."""
    doc = _isf()
    kt = doc["user_types"]["_KTHREAD"]["fields"]
    off = kt["ApcState"]["offset"] + doc["user_types"]["_KAPC_STATE"]["fields"]["Process"]["offset"]
    thread = KernelDump.open(DUMP).triage.thread
    return int.from_bytes(thread[off : off + 8], "little")


def _cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbgauto", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def parts() -> Any:
    with KernelDump.open(DUMP) as d:
        yield read_parts(d)


@needs_shared
def test_kdbg_match_names_the_table_and_rejects_the_others(parts: Any, tmp_path: Path) -> None:
    ctx = SymbolContext.build(KernelInputs.from_parts(parts), resolve_symbol_path(str(SYMBOLS), {}))
    assert ctx.method == "kdbg-match"
    assert ctx.table is not None
    assert (ctx.table.guid, ctx.table.age) == (MATCH, 1)
    assert len(ctx.identification.rejected) == 5
    assert ctx.record() | {"path": None} == {
        "path": None, "path_source": "argument", "network": False, "table": f"{MATCH}1",
        "module": "ntkrnlmp.pdb", "method": "kdbg-match", "reason": None,
    }  # fmt: skip
    # the naming protocol: (module, function, offset) — the function's start from the table's JSON
    rva = _isf()["symbols"]["RtlDispatchException"]["address"]
    kb = parts.kernel_base
    assert ctx.name(kb + rva + 0x297) == ("nt", "RtlDispatchException", 0x297)
    assert ctx.name(0x10) is None
    amd = next(d for d in parts.drivers if d.base_name.lower() == "amdppm.sys")
    assert ctx.name(amd.base + 0x334C) == ("amdppm", None, 0x334C)  # no table for that module: module+offset
    assert tuple(ctx.identity(parts.process, parts.thread, 8)) == ("System", 4, 264)
    # only the other five builds on the path: no table is used
    others = tmp_path / "others" / "ntkrnlmp.pdb"
    others.mkdir(parents=True)
    for p in (SYMBOLS / "ntkrnlmp.pdb").iterdir():
        if MATCH not in p.name:
            shutil.copy(p, others / p.name)
    none = SymbolContext.build(KernelInputs.from_parts(parts), resolve_symbol_path(str(others.parent), {}))
    assert none.table is None
    assert none.method is None
    assert "no candidate table matches the KDBG" in (none.reason or "")
    assert none.name(kb + rva + 0x297) == ("nt", None, rva + 0x297)
    assert none.identity(parts.process, parts.thread, 8) is None


@needs_shared
def test_run_k_and_ln_show_windbg_names() -> None:
    p = _cli("run", str(DUMP), "--engine", "native", "--no-banner", "--symbols", str(SYMBOLS),
             "-c", "k; ln fffff804`7bd2bf97; ln nt!_C_specific_handler+0xa2; x nt!RtlDispatchExc*")  # fmt: skip
    assert p.returncode == 0, p.stderr
    k = p.stdout.split("kd> ln")[0]
    assert "Stack scan with symbols" in k
    assert "identified by kdbg-match" in k
    for name in FRAMES:
        assert re.search(rf"^[0-9a-f]{{2}} \S+ \S+ {re.escape(name)}$", k, re.M), name
    assert "(fffff804`7bd2bf97)   nt!RtlDispatchException+0x297\n" in p.stdout
    assert "(fffff804`7bdcc052)   nt!_C_specific_handler+0xa2\n" in p.stdout
    rva = _isf()["symbols"]["RtlDispatchException"]["address"]
    base = 0xFFFFF8047BA00000  # KernBase, from the data's README
    text = f"{base + rva:016x}"
    assert f"{text[:8]}`{text[8:]} nt!RtlDispatchException\n" in p.stdout


@needs_shared
def test_shell_ln_and_dt_read_the_dumps_memory() -> None:
    va = _process_va()
    fields = _isf()["user_types"]["_EPROCESS"]["fields"]
    p = _cli("shell", "-z", str(DUMP), "--symbols", str(SYMBOLS),
             stdin=f"ln fffff8047bd2bf97\ndt nt!_EPROCESS {va:x}\ndt nt!_LIST_ENTRY\nq\n")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert f"Symbol search path is: {SYMBOLS} (from --symbols, local only)" in p.stdout
    assert "nt!RtlDispatchException+0x297" in p.stdout
    name_off, pid_off = fields["ImageFileName"]["offset"], fields["UniqueProcessId"]["offset"]
    assert f"   +{name_off:#05x} ImageFileName" in p.stdout
    line = next(ln for ln in p.stdout.splitlines() if "ImageFileName" in ln and "+0x" in ln)
    assert line.endswith('"System"')
    pid_line = next(ln for ln in p.stdout.splitlines() if re.search(rf"\+{pid_off:#05x} UniqueProcessId\b", ln))
    assert "0x00000000`00000004" in pid_line
    assert re.search(r"\+0x000 Flink\s+: _LIST_ENTRY\*", p.stdout)
    assert re.search(r"\+0x008 Blink\s+: _LIST_ENTRY\*", p.stdout)


@needs_shared
def test_facts_with_symbols_name_frames_and_take_identity_from_the_table() -> None:
    f = facts_from_dump(DUMP, symbol_path=str(SYMBOLS))
    assert (f.process_name, f.pid, f.tid) == ("System", 4, 264)
    x = f.experimental
    assert x["identity_method"] == "symbol-table"
    assert (x["symbols"]["method"], x["symbols"]["table"]) == ("kdbg-match", f"{MATCH}1")
    # the verdict's stack starts at the exception context (as !analyze does after .cxr): amdppm has no table here,
    # so no frame gets a function name; the nt frames named by the table are the ones `k` shows (tests above)
    assert f.stack.frames[0].module == "amdppm"
    assert not any(fr.function for fr in f.stack.frames if fr.module != "nt")
    again = CrashFacts.from_dict(json.loads(json.dumps(f.to_dict())))
    assert again.to_dict()["x_symbols"]["method"] == "kdbg-match"
    plain = facts_from_dump(DUMP, symbol_path=str(SHARED / "dumps"))  # a path with no table
    assert (plain.process_name, plain.pid, plain.tid) == ("System", 4, 264)  # today's answer stays
    assert plain.experimental["symbols"]["table"] is None
    assert "no kernel symbol table found" in plain.experimental["symbols"]["reason"]
    assert not any(fr.symbol for fr in plain.stack.frames)


@needs_shared
def test_a_corrupt_isf_is_a_warning_and_the_dump_is_still_analysed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbgauto.symbols import context

    monkeypatch.setattr(context, "STORE_RECHECK_SECONDS", 0.0)  # the store changes between the two dumps
    lib = tmp_path / "lib" / "ntkrnlmp.pdb"
    lib.mkdir(parents=True)
    shutil.copy(SYMBOLS / "ntkrnlmp.pdb" / f"{MATCH}-1.json.xz", lib)
    bad = lib / "00000000000000000000000000000000-1.json.xz"
    bad.write_bytes(lzma.compress(b'{"symbols": {"x": {"address": -5}}}'))
    f = facts_from_dump(DUMP, symbol_path=str(lib.parent))
    assert f.experimental["symbols"]["method"] == "kdbg-match"  # the good table still serves
    assert any(str(bad) in w and "32-bit RVA" in w for w in f.warnings)
    bad.write_bytes(b"\xfd7zXZ\x00garbage")
    (lib / f"{MATCH}-1.json.xz").unlink()
    f2 = facts_from_dump(DUMP, symbol_path=str(lib.parent))
    assert f2.bugcheck is not None
    assert f2.bugcheck.code == 0x1000007E
    assert (f2.process_name, f2.pid) == ("System", 4)
    assert f2.experimental["symbols"]["table"] is None
    assert any(str(bad) in w and "cannot read ISF" in w for w in f2.warnings)
    p = _cli("run", str(DUMP), "--engine", "native", "--no-banner", "--symbols", str(lib.parent), "-c", "k")
    assert p.returncode == 0
    assert "Stack scan without symbols" in p.stdout


def test_without_symbols_the_engine_says_so(triage_x64_path: Path) -> None:
    p = _cli("run", str(triage_x64_path), "--engine", "native", "-c", "k; ln fffff8047bd2bf97; dt nt!_EPROCESS")
    assert p.returncode == 1  # dt needs a table: rejected as before
    assert "Symbol search path is: (none given: dbgauto's cache" in p.stdout
    assert "Stack scan without symbols" in p.stdout
    assert "(fffff804`7bd2bf97)   nt+0x32bf97\n*** no symbols:" in p.stdout
    assert "not supported by the native engine" in p.stdout


def test_doctor_shows_the_path_its_source_and_network(tmp_path: Path) -> None:
    url = "https://msdl.microsoft.com/download/symbols"
    p = _cli("doctor", "--no-probe", "--json", env={"_NT_SYMBOL_PATH": f"srv*{tmp_path}*{url}"})
    sym = json.loads(p.stdout)["symbols"]
    assert (sym["path"], sym["source"], sym["network"], sym["servers"]) == (
        f"srv*{tmp_path}*{url}",
        "_NT_SYMBOL_PATH",
        True,
        [url],
    )
    p = _cli("doctor", "--no-probe", env={"_NT_SYMBOL_PATH": f"srv*{url}", "DBGAUTO_SYMBOL_PATH": str(tmp_path)})
    assert f"symbol path: {tmp_path}\n" in p.stdout
    assert "source: DBGAUTO_SYMBOL_PATH; no network" in p.stdout
    p = _cli("doctor", "--no-probe", "--symbols", f"cache*{tmp_path};srv*{url}",
             env={"DBGAUTO_SYMBOL_PATH": str(tmp_path)})  # fmt: skip
    assert "source: --symbols; may use the network (https://msdl.microsoft.com/download/symbols)" in p.stdout
    p = _cli("doctor", "--no-probe")
    assert "source: default: dbgauto's cache; no network" in p.stdout


def _guid_age(image: Path) -> tuple[str, int]:
    text = readobj(image, "--coff-debug-directory")
    raw = bytes(int(b, 16) for b in re.search(r"PDBGUID: \(([0-9A-F ]+)\)", text).group(1).split())
    return uuid.UUID(bytes_le=raw).hex.upper(), int(re.search(r"PDBAge: (\d+)", text).group(1))


def test_image_by_timestamp_from_a_loopback_server(served: tuple[str, ServedTree], tmp_path: Path) -> None:
    image = build(tmp_path / "b", "chain", "x64", c_source=CHAIN_C)
    info = describe(image)
    ts = int(re.search(r"TimeDateStamp: .*\((0x[0-9A-F]+)\)", readobj(image, "--file-headers")).group(1), 16)
    guid, age = _guid_age(image)
    url, tree = served
    tree.files[f"symbols/ntoskrnl.exe/{ts:08X}{info.size_of_image:x}/ntoskrnl.exe"] = image.read_bytes()
    tree.files[f"symbols/chain.pdb/{guid}{age:X}/chain.pdb"] = (tmp_path / "b" / "chain.pdb").read_bytes()
    base = 0xFFFFF80000000000
    inputs = KernelInputs(
        kernel_base=base, drivers=(DumpModule(r"\SystemRoot\ntoskrnl.exe", base, info.size_of_image, ts),)
    )
    store = tmp_path / "store"
    ctx = SymbolContext.build(inputs, resolve_symbol_path(f"srv*{store}*{url}", {"DBGAUTO_SYMBOL_CACHE": str(store)}))
    assert ctx.method == "image-by-timestamp", ctx.reason
    assert ctx.table is not None
    assert ctx.table.pdb_id == f"{guid}{age:X}"
    for fn in ("leaf_c", "mid_b"):
        assert ctx.name(base + info.exports[fn] + 3) == ("nt", fn, 3)
    assert (store / "chain.pdb" / f"{guid}{age:X}" / "chain.pdb").is_file()  # kept downstream
    # the same path without the server (air-gapped): the stored copies still identify it, no request made
    before = len(tree.log)
    offline = SymbolContext.build(inputs, resolve_symbol_path(str(store), {"DBGAUTO_SYMBOL_CACHE": str(store)}))
    assert offline.method == "image-by-timestamp"
    assert len(tree.log) == before


@needs_shared
def test_symbols_cli_against_a_loopback_server(served: tuple[str, ServedTree], tmp_path: Path) -> None:
    url, tree = served
    tri = KernelDump.open(DUMP).triage
    hal = next(d for d in tri.drivers if d.base_name.lower() == "hal.dll")
    image = build(tmp_path / "b", "chain", "x64", c_source=CHAIN_C)
    guid, age = _guid_age(image)
    tree.files[f"symbols/hal.dll/{hal.timestamp:08X}{hal.size:x}/hal.dll"] = image.read_bytes()
    tree.files[f"symbols/chain.pdb/{guid}{age:X}/chain.pdb"] = (tmp_path / "b" / "chain.pdb").read_bytes()
    store, cache = tmp_path / "store", tmp_path / "cache"
    env = {"DBGAUTO_SYMBOL_CACHE": str(cache)}
    # import the ISF library first, so the kernel's table is identified from the cache
    p = _cli("symbols", "import", str(SYMBOLS), env=env)
    assert p.returncode == 0, p.stderr
    assert "6 ISF table(s)" in p.stdout
    p = _cli("symbols", "fetch", str(DUMP), "--symbols", f"srv*{store}*{url}", env=env)
    assert p.returncode == 0, p.stderr
    n = len({(d.base_name.lower(), d.timestamp, d.size) for d in tri.drivers if d.size})
    assert re.search(rf"^\[1/{n + 1}\] ntoskrnl.exe/", p.stderr, re.M)  # progress, nt first, its PDB last
    assert f"hal.dll/{hal.timestamp:08X}{hal.size:x}/hal.dll -> {store}" in p.stderr
    assert f"chain.pdb/{guid}{age:X}/chain.pdb -> {store}" in p.stderr  # the PDB the fetched image names
    assert (store / "chain.pdb" / f"{guid}{age:X}" / "chain.pdb").read_bytes() == (
        tmp_path / "b" / "chain.pdb"
    ).read_bytes()
    assert p.stdout.startswith("2 of ")
    p = _cli("symbols", "manifest", str(DUMP), "-o", str(tmp_path / "m.txt"), env=env)
    lines = (tmp_path / "m.txt").read_text().splitlines()
    assert f"ntkrnlmp.pdb,{MATCH}1,1" in lines
    assert f"hal.dll,{hal.timestamp:08X}{hal.size:x},1" in lines
    p = _cli("symbols", "status", "--json", env=env)
    st = json.loads(p.stdout)
    assert (st["isf"], st["cache_dir"], st["network"]) == (6, str(cache), False)
    assert st["tables"] == 6  # converted once, by manifest's identification


@needs_shared
def test_report_with_symbols_records_how_the_table_was_identified(tmp_path: Path) -> None:
    p = _cli("report", str(DUMP), "-o", str(tmp_path / "r"), "-f", "json", "--symbols", str(SYMBOLS))
    assert p.returncode == 0, p.stderr
    (doc,) = [json.loads(f.read_text()) for f in (tmp_path / "r").rglob("*.json")]
    facts = doc.get("facts", doc)
    assert facts["x_symbols"]["method"] == "kdbg-match"
    assert facts["x_symbols"]["table"] == f"{MATCH}1"
    assert facts["stack"]["frames"][0]["module"] == "amdppm"  # the verdict's stack: from the exception context


@needs_shared
def test_the_caches_own_converted_files_are_not_taken_for_isf_tables(tmp_path: Path) -> None:
    """An older dbgauto left ``tables/*.kdbg.json`` fingerprints in the cache; they are ours, not a library: no
    warning about them, and the imported library still identifies the kernel."""
    cache = tmp_path / "cache"
    env = {"DBGAUTO_SYMBOL_CACHE": str(cache)}
    assert _cli("symbols", "import", str(SYMBOLS), env=env).returncode == 0
    (cache / "tables").mkdir(parents=True, exist_ok=True)
    (cache / "tables" / f"{MATCH}-1-0123456789abcdef0123.kdbg.json").write_text('{"rvas": {}}')
    p = _cli("run", str(DUMP), "--engine", "native", "--no-banner", "-c", "k", env=env)  # the default path: the cache
    assert p.returncode == 0, p.stderr
    assert "not an ISF table" not in p.stderr
    assert "identified by kdbg-match" in p.stdout
