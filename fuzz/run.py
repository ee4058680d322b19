"""Run fuzz targets for a bounded time each: seeds built at run time, findings under fuzz/out/<target>/.

Exit status 0 when no target found anything, 1 when one did (its crash file is named), 0 with a message when
atheris is not installed (CI skips cleanly).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from seeds import SEEDS, write_seeds  # noqa: E402

MAX_LEN = {"debugtext": 64 << 10, "symbols": 256 << 10}  # libFuzzer's default is 4096; dumps need their size
TIMEOUT_S = 20  # one input longer than this is a hang


def run_target(target: str, seconds: int, out: Path) -> bool:
    """True when the target ran its time without a finding."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("fuzz: atheris is not installed (pip install atheris); skipping", file=sys.stderr)
        return True
    work = out / target
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        n = write_seeds(target, corpus)
        seeds_len = max((p.stat().st_size for p in corpus.iterdir()), default=4096)
        max_len = max(MAX_LEN.get(target, 0), seeds_len)
        cmd = [
            sys.executable,
            str(HERE / "targets" / f"{target}.py"),
            str(corpus),
            f"-max_total_time={seconds}",
            f"-max_len={max_len}",
            f"-timeout={TIMEOUT_S}",
            f"-artifact_prefix={work}/",
            "-print_final_stats=1",
        ]
        start = time.monotonic()
        res = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds + 300)
        took = time.monotonic() - start
    stats = [line for line in res.stderr.splitlines() if line.startswith(("stat::number_of_executed_units", "#"))]
    done = next((s for s in reversed(stats) if "number_of_executed_units" in s), stats[-1] if stats else "")
    print(f"fuzz {target}: {n} seeds, {took:.0f} s, exit {res.returncode}; {done.strip()}")
    if res.returncode != 0:
        crashes = sorted(work.glob("crash-*")) + sorted(work.glob("timeout-*")) + sorted(work.glob("slow-unit-*"))
        tail = "\n".join(res.stderr.splitlines()[-40:])
        print(f"fuzz {target}: FINDING {[str(c) for c in crashes]}\n{tail}", file=sys.stderr)
        return False
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("targets", nargs="*", help=f"targets among {', '.join(SEEDS)} (default: every one)")
    ap.add_argument("--all", action="store_true", help="run every target")
    ap.add_argument("--seconds", type=int, default=60, help="time per target")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="where findings go")
    args = ap.parse_args()
    targets = list(SEEDS) if args.all or not args.targets else args.targets
    unknown = [t for t in targets if t not in SEEDS]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(SEEDS)}")
    ok = [run_target(t, args.seconds, args.out) for t in targets]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
