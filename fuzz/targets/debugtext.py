"""Debugger console text: the whole-log parser and the facts from it. Never raises; stays fast on any input."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import atheris, main

with atheris.instrument_imports():
    from dbgauto.analysis.from_log import facts_from_log
    from dbgauto.debugtext import decode_log, parse_analyze, parse_log

SLOW_S = 1.0  # per input (inputs are at most libFuzzer's -max_len): slower means a superlinear parser


def body(data: bytes) -> None:
    text = decode_log(data)
    start = time.perf_counter()
    parse_log(text)
    parse_analyze(text)
    facts_from_log(text).to_dict()
    took = time.perf_counter() - start
    if took > SLOW_S:
        raise RuntimeError(f"slow input: {took:.2f} s for {len(text)} characters")


if __name__ == "__main__":
    main(body)
