"""Benchmark the verdict of a small dump (issue 16: unwind + identity + culprit + bucket ≤ 3 ms in-process, warm).

The dump is opened and its KernelParts read once (as a native session or batch task does); what is timed is
``facts_from_parts`` — the unwound stack from the exception context, the identity search and table cross-check,
the attribution table and the bucket — plus, separately, each step alone. Best and median of 7 rounds.

``--large GIB`` (e.g. 256): the issue's second target, a large dump's verdict ≤ 0.5 s for the *whole process*. The
real small dump is re-inflated (testkit dumpinflate, as benchmarks/bench_convert.py does) into a sparse 64-bit
Kernel bitmap dump of a machine with GIB of RAM, and ``dbgauto run --engine native --no-banner -c "!analyze -v"`` is
timed as a fresh process (interpreter start, imports from compiled bytecode as an installed package has it, opening
the dump, walking the kernel, facts, output), best and median of 7; then one in-process breakdown (imports, open +
kernel walk, facts).
Usage: ``python benchmarks/bench_verdict.py [--shared DIR] [--large 256] [--dir DIR]`` (default ../shared, or
$DBGAUTO_SHARED).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import rounds

from dbgauto.analysis.from_dump import facts_from_parts
from dbgauto.analysis.stack import unwound_stack
from dbgauto.kdump.reader import KernelDump
from dbgauto.kernel.identity import identity_of
from dbgauto.kernel.open import read_parts

REPO = Path(__file__).resolve().parent.parent


def show(label: str, times: list[float]) -> None:
    print(f"{label:<44} best {min(times) * 1e3:8.3f} ms   median {statistics.median(times) * 1e3:8.3f} ms")


LARGE_TARGET_SECONDS = 0.5


def large(sample: Path, gib: int, folder: Path | None) -> None:
    """The whole-process verdict of a GIB-sized Kernel bitmap dump inflated from ``sample`` (module docstring)."""
    from dbgauto_testkit import dumpinflate

    work = folder or Path(tempfile.mkdtemp(prefix="bench_verdict."))
    dump = work / f"kernel_{gib}g.dmp"
    t0 = time.perf_counter()
    inf = dumpinflate.inflate(
        sample,
        dump,
        small=dumpinflate.parse(sample),
        dump_type=6,
        placement="scattered",
        ram_bytes=gib << 30,
        present_fraction=0.05,
        seed=gib,
        overwrite=True,
    )
    print(
        f"{dump}: {dump.stat().st_size / (1 << 30):.2f} GiB sparse file, "
        f"bitmap {(inf.info.bitmap_bits or 0) // 8 >> 20} MiB, {dump.stat().st_blocks * 512 >> 20} MiB on disk "
        f"(inflated in {time.perf_counter() - t0:.1f} s)"
    )
    cmd = [sys.executable, "-m", "dbgauto", "run", "--engine", "native", "--no-banner", "-c", "!analyze -v", str(dump)]
    # An installed package has its bytecode compiled (pip does it); an environment with PYTHONDONTWRITEBYTECODE set
    # (this VM) would otherwise compile every module on every start, ~0.3 s of the figure. compileall writes anyway.
    import dbgauto

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(dbgauto.__file__).parent)], check=True)
    subprocess.run(cmd, capture_output=True, check=True)  # warm the page cache
    walls = []
    for _ in range(7):
        t1 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        walls.append(time.perf_counter() - t1)
    show(f"whole process: dbgauto run !analyze -v ({gib} GiB)", walls)
    verdict = "ok" if statistics.median(walls) <= LARGE_TARGET_SECONDS else "MISSED"
    print(f"target <= {LARGE_TARGET_SECONDS} s (median): {verdict}")
    bucket = next((ln for ln in out.splitlines() if ln.startswith("FAILURE_BUCKET_ID")), "no bucket")
    print(f"  {bucket}")
    probe = (
        "import time; t0 = time.perf_counter(); import dbgauto.cli, dbgauto.engines.native; t1 = time.perf_counter()\n"
        "from dbgauto.kdump.reader import KernelDump; from dbgauto.kernel.open import read_parts\n"
        "from dbgauto.analysis.from_dump import facts_from_parts\n"
        f"d = KernelDump.open({str(dump)!r}); p = read_parts(d); t2 = time.perf_counter()\n"
        "facts_from_parts(d, p, source=None); t3 = time.perf_counter()\n"
        "print(f'  in-process: imports {(t1-t0)*1e3:.0f} ms, open + kernel walk {(t2-t1)*1e3:.0f} ms, "
        "facts {(t3-t2)*1e3:.1f} ms')"
    )
    print(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.rstrip())
    if folder is None:
        dump.unlink()
        work.rmdir()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("DBGAUTO_SHARED", REPO.parent / "shared")))
    ap.add_argument("--large", type=int, default=None, metavar="GIB", help="time a large dump of GIB RAM instead")
    ap.add_argument("--dir", type=Path, default=None, help="where the large dump is written (kept)")
    args = ap.parse_args()
    path = args.shared / "dumps" / "triage_x64.dmp"
    if args.large:
        large(path, args.large, args.dir)
        return
    dump = KernelDump.open(path)
    parts = read_parts(dump)
    code = dump.header.bugcheck_code
    params = list(dump.header.bugcheck_parameters or ())
    facts_from_parts(dump, parts, source=None)  # warm: bug check table, inbox list, templates of the codec
    show("verdict (facts_from_parts, warm)", rounds(lambda: facts_from_parts(dump, parts, source=None), number=200))
    show("  unwound stack", rounds(lambda: unwound_stack(parts, bugcheck_code=code, parameters=params), number=200))
    show("  identity (search + table)", rounds(lambda: identity_of(parts), number=200))
    f = facts_from_parts(dump, parts, source=None)
    c = f.culprit
    print(f"culprit {c.name if c else None} ({c.rule if c else ''}); bucket {f.bucket_id}")


if __name__ == "__main__":
    main()
