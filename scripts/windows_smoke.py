#!/usr/bin/env python3
"""Smoke-test dbgauto's Windows engines (DbgEng via pybag, cdb via pexpect) on your own dumps.

Run on a Windows machine with Debugging Tools for Windows (or the Store WinDbg) installed:

    python scripts/windows_smoke.py C:\\dumps\\MEMORY.DMP C:\\Windows\\Minidump\\*.dmp
    python scripts/windows_smoke.py --engines cdb --debugger-path "C:\\...\\x64\\cdb.exe" D:\\big.dmp

For every dump and engine it checks: open, vertarget (same build as the dump header), .bugcheck and
!analyze -v (same bug check code), lm (module rows), .dump /m into a temporary folder, and re-opens the
written file with dbgauto's native reader (a small memory dump with the same bug check). Each engine/dump
pair runs in its own process, because DbgEng allows one session per process and a hung command cannot be
stopped in-process. A pass/fail table is printed; the exit status is 0 only when every check passed.
Nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHECKS = ("available", "open", "vertarget", ".bugcheck", "lm", "!analyze -v", ".dump /m", "re-open small dump")


def _check_one(engine_name: str, dump: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every check for one engine on one dump (in this process); one row per check."""
    from dbgauto.debugtext import parse_analyze, parse_bugcheck, parse_lm, parse_vertarget
    from dbgauto.engines.select import get_engine
    from dbgauto.kdump.reader import KernelDump

    rows: list[dict[str, Any]] = []

    def row(check: str, ok: bool | None, detail: str) -> None:
        rows.append({"engine": engine_name, "dump": str(dump), "check": check, "ok": ok, "detail": detail[:160]})

    with KernelDump.open(dump) as kd:
        expected_code, expected_build = kd.header.bugcheck_code, kd.header.minor_version
    engine = get_engine(engine_name, debugger_path=args.debugger_path)
    avail = engine.available()
    row("available", avail.ok, avail.reason)
    if not avail.ok:
        return rows
    start = time.perf_counter()
    try:
        session = engine.open(dump, symbol_path=args.symbol_path, timeout=args.timeout)
    except Exception as exc:  # report, do not stop the table
        row("open", False, f"{type(exc).__name__}: {exc}")
        return rows
    with session:
        row("open", True, f"{time.perf_counter() - start:.1f}s, debugger {session.debugger_version}")
        # each answer is read with the parsers dbgauto uses on debugger logs, and compared with the dump header
        for command, verify in (
            ("vertarget", lambda out: parse_vertarget(out).build == expected_build),
            (".bugcheck", lambda out: getattr(parse_bugcheck(out), "code", None) == expected_code),
            ("lm", lambda out: len(parse_lm(out)) > 0),
            ("!analyze -v", lambda out: parse_analyze(out).bugcheck_code == expected_code),
        ):
            try:
                res = session.run(command, timeout=args.timeout)
                ok = bool(verify(res.output))
                first = next((ln for ln in res.output.splitlines() if re.search(r"[A-Za-z]", ln)), "")
                row(command, ok, f"{res.elapsed:.1f}s: {first.strip()}")
            except Exception as exc:
                row(command, False, f"{type(exc).__name__}: {exc}")
        out = Path(args.out_dir) / f"{dump.stem}.{engine_name}.small.dmp"
        try:
            written = session.write_small_dump(out, overwrite=True)
            row(".dump /m", True, str(written))
        except Exception as exc:
            row(".dump /m", False, f"{type(exc).__name__}: {exc}")
            return rows
    try:
        with KernelDump.open(written) as small:
            ok = int(small.dump_type) == 4 and small.header.bugcheck_code == expected_code
            drivers = len(small.triage.drivers)
            row(
                "re-open small dump", ok, f"DumpType {int(small.dump_type)}, {drivers} drivers, {small.file_size} bytes"
            )
    except Exception as exc:
        row("re-open small dump", False, f"{type(exc).__name__}: {exc}")
    return rows


def _expand(pattern: str) -> list[Path]:
    """Wildcards in the file name are expanded here (cmd.exe does not do it)."""
    p = Path(pattern)
    if any(ch in p.name for ch in "*?["):
        return sorted(p.parent.glob(p.name)) or [p]
    return [p]


def _run_child(engine_name: str, dump: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    cmd = [sys.executable, __file__, "--child", engine_name, "--timeout", str(args.timeout), "--out-dir", args.out_dir]
    if args.debugger_path:
        cmd += ["--debugger-path", args.debugger_path]
    if args.symbol_path:
        cmd += ["--symbol-path", args.symbol_path]
    cmd.append(str(dump))
    budget = args.timeout * (len(CHECKS) + 2)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget, check=False)
    except subprocess.TimeoutExpired:
        return [
            {
                "engine": engine_name,
                "dump": str(dump),
                "check": "open",
                "ok": False,
                "detail": f"no answer in {budget:g}s",
            }
        ]
    try:
        return list(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return [{"engine": engine_name, "dump": str(dump), "check": "open", "ok": False, "detail": detail[0][:160]}]


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("result", "engine", "check", "dump", "detail")
    body = [
        (
            "PASS" if r["ok"] else "FAIL" if r["ok"] is False else "SKIP",
            r["engine"],
            r["check"],
            Path(r["dump"]).name,
            r["detail"],
        )
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in (head, *body)) for i in range(4)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + str(r[4]) for r in (head, *body)
    ]
    lines.insert(1, "-" * min(120, len(lines[0]) + 20))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dumps", nargs="+", help="dump files (wildcards are expanded)")
    p.add_argument("--engines", default="dbgeng,cdb", help="comma-separated: dbgeng, cdb, kd, native")
    p.add_argument("--debugger-path", help="cdb/kd to use instead of searching")
    p.add_argument("--symbol-path", help="symbol path (default: _NT_SYMBOL_PATH)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per command (symbol downloads are slow)")
    p.add_argument("--out-dir", default=None, help="where .dump /m writes (default: a temporary folder)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    dumps = [d for pattern in args.dumps for d in _expand(pattern)]
    if args.child:
        print(json.dumps(_check_one(args.child, dumps[0], args)))
        return 0
    with tempfile.TemporaryDirectory(prefix="dbgauto-smoke-") as tmp:
        args.out_dir = args.out_dir or tmp
        rows = []
        for dump in dumps:
            for engine_name in [e.strip() for e in args.engines.split(",") if e.strip()]:
                print(f"checking {engine_name} on {dump} ...", file=sys.stderr, flush=True)
                rows += _run_child(engine_name, dump, args)
    print(_table(rows))
    failed = sum(1 for r in rows if r["ok"] is False)
    print(f"\n{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
