#!/usr/bin/env python3
"""Render index.html for ~200 generated dumps and look at it in headless Chromium (Debian's ``chromium``).

Checks, in a real browser, that the page loads without console errors or CSP violations, and that the
page's own script ran under its Content-Security-Policy (it marks the table ``data-script="ready"``);
writes a PNG to look at. A self-check page that logs a console error first proves the error detection
works. Not run in CI (needs a browser: ``apt-get install -y chromium``).

    python scripts/screenshot_report.py [--count 200] [--out DIR] [--browser chromium]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from dbgauto.engines.jobs import facts_from_dump
from dbgauto.report.render import ReportRenderer

BENCH_REPORT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_report.py"


def _bench_report() -> ModuleType:
    """benchmarks/bench_report.py, loaded from its file: its fleet of varied facts is the page's data."""
    spec = importlib.util.spec_from_file_location("bench_report", BENCH_REPORT)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {BENCH_REPORT}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-extensions",
    "--disable-sync",
    "--disable-component-update",
    "--enable-logging=stderr",
    "--v=0",
)
PROBLEM = re.compile(r"CONSOLE|Uncaught|Refused to|Content Security Policy|ERR_", re.I)


def browser(args: list[str], binary: str, profile: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def console_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if PROBLEM.search(line)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "dbgauto-screenshot")
    ap.add_argument("--browser", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    ap.add_argument("--size", default="1400,2200", help="window size W,H")
    args = ap.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    bench = _bench_report()
    facts = bench.vary(facts_from_dump(bench.DEFAULT_DUMP), args.count)
    ReportRenderer().write_report_set(facts, out, ("html",))
    index = out / "index.html"
    one_report = next(p for p in sorted(out.glob("*.html")) if p.name != "index.html")

    with tempfile.TemporaryDirectory(prefix="dbgauto-chromium-") as tmp:
        profile = Path(tmp) / "profile"
        selfcheck = Path(tmp) / "selfcheck.html"
        selfcheck.write_text('<!DOCTYPE html><script>console.error("dbgauto-selfcheck")</script>', encoding="utf-8")
        probe = browser(["--dump-dom", selfcheck.as_uri()], args.browser, profile)
        if "dbgauto-selfcheck" not in probe.stderr:
            print("self-check failed: a console error was not seen in the browser log", file=sys.stderr)
            return 2

        problems: list[str] = []
        for page in (index, one_report):
            dom = browser(["--dump-dom", page.as_uri()], args.browser, profile)
            problems += [f"{page.name}: {line}" for line in console_problems(dom.stderr)]
            if page is index and 'data-script="ready"' not in dom.stdout:
                problems.append("index.html: the page script did not run (CSP hash or JavaScript error)")
        # the filter, driven through the URL (#q=...): rows shown must be the dumps with that bug check
        name = next(f.bugcheck.name for f in facts if f.bugcheck and f.bugcheck.name)
        expected = sum(1 for f in facts if f.bugcheck and f.bugcheck.name == name)
        dom = browser(["--dump-dom", f"{index.as_uri()}#q={name}"], args.browser, profile)
        shown = re.search(r'id="shown">(\d+)<', dom.stdout)
        hidden = len(re.findall(r"<tr hidden", dom.stdout))
        if not shown or int(shown.group(1)) != expected or hidden != len(facts) - expected:
            problems.append(f"filter #q={name}: shown {shown and shown.group(1)}, hidden {hidden}; want {expected}")
        else:
            print(f"filter #q={name}: {expected} of {len(facts)} rows shown, as expected")
        png = out / "index.png"
        shot = browser([f"--screenshot={png}", f"--window-size={args.size}", index.as_uri()], args.browser, profile)
        problems += [f"screenshot: {line}" for line in console_problems(shot.stderr)]

    print(f"rendered {args.count} dumps into {out}")
    print(f"screenshot: {png} ({png.stat().st_size if png.exists() else 0} bytes)")
    if problems:
        print("console problems:", *problems, sep="\n  ")
        return 1
    print("console: no errors, no CSP violations; index script ran under its CSP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
