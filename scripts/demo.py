"""The README's main job on sample dumps: generate a few dumps, run `dbgauto batch` over them, show the outputs.

    python scripts/demo.py [--dir dbgauto-demo] [--fresh] [--jobs N]

Needs dbgauto and its test kit installed (``pip install -e . -e ./testkit``).
Sample dumps go to DIR/dumps (default ./dbgauto-demo/dumps):
- when the shared material (../shared beside the repository, or $DBGAUTO_SHARED) is present: large dumps
  (Complete, Kernel with an encoded KDBG, Active) rebuilt by dbgauto_testkit.dumpinflate from the real Windows small
  dump, two of them named MEMORY.DMP in different host folders, plus a hard link (or copy) of the real small
  dump itself, and two 32-bit dumps (x86 PAE Complete, x86 Active) of synthetic kernel worlds;
- otherwise: synthetic kernel worlds from dbgauto_testkit.dumpinflate.kworld (KDBG, processors, thread, process,
  stack, loaded and unloaded drivers, a bug check naming a culprit driver): x64 Kernel with an encoded KDBG,
  x64 Complete, x64 Active, x86 PAE Complete and x86 Active, so every good sample converts and reports;
- always one deliberately broken file (a dump cut inside its header), which the batch lists as failed.
Then `dbgauto batch DIR/dumps --out DIR/out` runs as a child process (the installed console script when it
is on PATH, else `python -m dbgauto`). Run it again: the second batch finds nothing new.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

try:
    from dbgauto_testkit import dumpinflate
except ImportError:  # the sample dumps come from the dev-only test kit beside dbgauto
    sys.exit("scripts/demo.py writes its sample dumps with the test kit: pip install -e ./testkit (in the repository)")

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    return Path(os.environ.get("DBGAUTO_SHARED", REPO.parent / "shared"))


def make_inflated(dumps: Path, triage: Path) -> list[Path]:
    small = dumpinflate.parse(triage)
    plan = (
        ("hostA/MEMORY.DMP", 6, True, "scattered"),  # Kernel memory dump, encoded KDBG (Windows 8+ x64)
        ("hostB/MEMORY.DMP", 1, False, "sequential"),  # Complete memory dump, same file name on another host
        ("hostC/active-memory.dmp", 5, False, "scattered"),  # Active memory dump (bitmap)
    )
    written = []
    for rel, dump_type, encoded, placement in plan:
        target = dumps / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        dumpinflate.inflate(triage, target, dump_type=dump_type, encoded=encoded, placement=placement, small=small)
        written.append(target)
    minidump = dumps / "Minidump" / "112426-01.dmp"
    minidump.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(triage, minidump)  # a hard link costs no space; the batch never modifies its sources
    except OSError:
        shutil.copyfile(triage, minidump)
    written.append(minidump)
    return written


# (relative path, arch, DumpType, encoded KDBG, bug check, culprit driver): synthetic kernel worlds
KWORLD_64 = (
    ("hostA/MEMORY.DMP", "x64", 6, True, 0xD1, "vendornet.sys"),  # Kernel memory dump, encoded KDBG
    ("hostB/MEMORY.DMP", "x64", 1, False, 0x50, "acmefilt.sys"),  # Complete memory dump
    ("hostC/active-memory.dmp", "x64", 5, False, 0x3B, "gpuhelper.sys"),  # Active memory dump
)
KWORLD_32 = (
    ("legacy32/MEMORY.DMP", "x86pae", 1, False, 0x7E, "fastdisk.sys"),  # 32-bit PAE, Complete
    ("legacy32-nopae/active.dmp", "x86", 5, False, 0x0A, "crashy.sys"),  # 32-bit non-PAE, Active
)


def make_kworld(dumps: Path, plan: tuple[tuple[str, str, int, bool, int, str], ...]) -> list[Path]:
    written = []
    for seed, (rel, arch, dump_type, encoded, bugcheck, culprit) in enumerate(plan):
        target = dumps / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        dumpinflate.write_kworld(
            target, arch, dump_type, seed=seed, encoded=encoded, bugcheck=bugcheck, culprit=culprit, processors=2
        )
        written.append(target)
    return written


def make_broken(dumps: Path, good: Path) -> Path:
    broken = dumps / "broken" / "cut-in-header.dmp"
    broken.parent.mkdir(parents=True, exist_ok=True)
    with open(good, "rb") as fh:
        broken.write_bytes(fh.read(0x800))  # PAGEDU64 signature, header cut short
    return broken


def dbgauto_command() -> list[str]:
    exe = shutil.which("dbgauto")
    return [exe] if exe else [sys.executable, "-m", "dbgauto"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("dbgauto-demo"), help="demo folder (default ./dbgauto-demo)")
    parser.add_argument("--fresh", action="store_true", help="delete the demo folder first")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)

    base = args.dir.resolve()
    if args.fresh and base.exists():
        shutil.rmtree(base)
    dumps, out = base / "dumps", base / "out"
    if not dumps.exists():
        triage = shared_dir() / "dumps" / "triage_x64.dmp"
        dumps.mkdir(parents=True)
        if triage.is_file():
            print(f"generating dumps from the real small dump {triage} ...")
            made = make_inflated(dumps, triage) + make_kworld(dumps, KWORLD_32)
        else:
            print(f"{triage} not found: generating synthetic kernel worlds (dbgauto_testkit.dumpinflate.kworld) ...")
            made = make_kworld(dumps, KWORLD_64 + KWORLD_32)
        made.append(make_broken(dumps, made[0]))
        for path in made:
            print(f"  {path.relative_to(base)}  ({path.stat().st_size:,} bytes)")
    else:
        print(f"using the dumps already in {dumps} (--fresh to regenerate)")

    cmd = [
        *dbgauto_command(),
        "batch",
        str(dumps),
        "--out",
        str(out),
        "--jobs",
        str(args.jobs),
        "--formats",
        "html,json,md",
    ]
    print("\n$ " + " ".join(cmd), flush=True)
    code = subprocess.call(cmd)
    print()
    if code not in (0, 1) or not (out / "index.html").is_file():
        print(f"dbgauto batch failed (exit {code})", file=sys.stderr)
        return code or 1
    if (out / "small").is_dir():
        print("small dumps:", out / "small")
    print("reports:    ", out / "reports")
    print("index.html: ", out / "index.html")
    print("catalog:    ", out / "dbgauto.sqlite", " (look inside: dbgauto catalog list", out, ")")
    if code == 1:
        print("(the failure above is expected: broken/cut-in-header.dmp is broken on purpose)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
