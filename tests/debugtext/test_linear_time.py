"""Logs are untrusted input: every parser stays linear. Each adversarial text (about 1 MB) must parse in seconds
(under a second on an idle machine); the quadratic regexes fuzzing found took 7.9 s for 8,000 lines and 73 s for 16,000.

A generous time bound in a test is deliberate here: it guards complexity (quadratic vs linear), not speed.
"""

from __future__ import annotations

import time

import pytest
from dbgauto_testkit.hostile_logs import MB, NAMES
from dbgauto_testkit.hostile_logs import hostile_text as _text

from dbgauto.analysis.from_log import facts_from_log
from dbgauto.debugtext import parse_analyze, parse_bugcheck, parse_log, parse_stack

BOUND_S = 6.0  # one parser over 1 MB of hostile text (linear parsers take 0.01-0.8 s idle, 1.3 s seen under load)
WHOLE_LOG_BOUND_S = 20.0  # parse_log / facts_from_log run every parser; 116k one-line prompts per MB is the worst


PARSERS = {
    "parse_analyze": (parse_analyze, BOUND_S),
    "parse_bugcheck": (parse_bugcheck, BOUND_S),
    "parse_stack": (parse_stack, BOUND_S),
    "parse_log": (parse_log, WHOLE_LOG_BOUND_S),
    "facts_from_log": (facts_from_log, WHOLE_LOG_BOUND_S),
}


def _time(func: object, text: str) -> float:
    start = time.perf_counter()
    func(text)  # type: ignore[operator]
    return time.perf_counter() - start


@pytest.mark.parametrize("name", NAMES)
def test_adversarial_text_parses_in_linear_time(name: str) -> None:
    """1 MB within the bound, and 4x the text takes nowhere near 16x the time (quadratic would)."""
    big, quarter = _text(name), _text(name, MB // 4)
    for parser, (func, bound) in PARSERS.items():
        t_big = _time(func, big)
        assert t_big < bound, f"{name}: {parser} took {t_big:.2f} s for {len(big)} characters"
        t_quarter = _time(func, quarter)
        assert t_big < 8 * t_quarter + 0.3, (
            f"{name}: {parser} grows faster than linear ({t_quarter:.3f}->{t_big:.3f} s)"
        )


def test_mutated_transcript_parses_fast() -> None:
    """The fuzzer's slow 37 KB transcript: a one-line field, then thousands of blank lines before an indented
    continuation. Every blank line looked ahead for the next text line (``lines[i + 1:]`` scanned per blank line):
    quadratic in the blank run. Rebuilt here in the same shape (the old code took over a minute on it)."""
    text = "Debugging Details:\n------------------\nMODULE_NAME: nt\n" + "\n" * 37_000 + "  x\nIMAGE_NAME: nt.sys\n"
    start = time.perf_counter()
    info = parse_analyze(text)
    took = time.perf_counter() - start
    assert info.module_name is not None
    assert info.module_name.startswith("nt\n")
    assert info.module_name.endswith("  x")
    assert info.image_name == "nt.sys"
    assert took < 0.5, f"{took:.2f} s"
