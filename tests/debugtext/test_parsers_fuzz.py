"""Robustness: no parser raises on random text or on random slices/mixes of the real transcripts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbgauto.debugtext import (
    parse_analyze,
    parse_banner,
    parse_bugcheck,
    parse_lm,
    parse_log,
    parse_stack,
    parse_vertarget,
    split_command_line,
    split_commands,
)

_META_RE = re.compile(r"^# (?:source|kind|extracted|note):|^# ---$")
_PARSERS = (parse_analyze, parse_banner, parse_bugcheck, parse_lm, parse_stack, parse_vertarget, split_commands)


def _corpus(transcripts_dir: Path) -> str:
    return "\n".join(
        "\n".join(line for line in p.read_text(encoding="utf-8").splitlines() if not _META_RE.match(line))
        for p in sorted(transcripts_dir.glob("*.log"))
    )


# Text that looks like debugger output: pieces of its vocabulary mixed with arbitrary characters.
_VOCAB = st.sampled_from(
    [
        "0: kd> ",
        "12: kd> ",
        "kd> ",
        "0:000> ",
        "Arguments:",
        "Arg1: ",
        "Debugging Details:",
        "STACK_TEXT:  ",
        "KEY_VALUES_STRING: 1",
        "    Key  : ",
        "    Value: ",
        "fffff800`62a08bb5",
        "804d7000",
        " : ",
        "nt!KiPageFault+0x",
        "Unloaded modules:",
        "(deferred)",
        "BugCheck 3B, {",
        "Bugcheck code ",
        "Windows 10 Kernel Version ",
        "Debug session time: ",
        "(UTC + 9:00)",
        "System Uptime: ",
        "Kernel base = 0x",
        "[C:\\a.c @ ",
        ";",
        "'",
        '"',
        "{",
        "}",
        "\n",
        "\t",
        " ",
    ]
)
_DEBUGGERISH = st.lists(st.one_of(_VOCAB, st.text(max_size=12)), max_size=60).map("".join)


def _check(text: str) -> None:
    for parser in _PARSERS:
        parser(text)
    result = parse_log(text)
    json.dumps(result.to_dict())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_random_text_never_raises(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DEBUGGERISH)
def test_debugger_like_text_never_raises(text: str) -> None:
    _check(text)
    split_command_line(text.replace("\n", " "))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(min_value=0, max_value=1), st.integers(min_value=0, max_value=4000))
def test_random_slices_of_transcripts_never_raise(transcripts_dir: Path, where: float, length: int) -> None:
    corpus = _corpus(transcripts_dir)
    start = int(where * len(corpus))
    _check(corpus[start : start + length])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_shuffled_transcript_lines_never_raise(transcripts_dir: Path, data: st.DataObject) -> None:
    lines = _corpus(transcripts_dir).splitlines()
    picked = data.draw(st.lists(st.sampled_from(lines), max_size=120))
    _check("\n".join(picked))


def test_whole_transcripts_parse_without_warnings(transcripts_dir: Path) -> None:
    """Besides T12's old-debugger note, the real logs give no parse warnings."""
    for path in sorted(transcripts_dir.glob("*.log")):
        text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not _META_RE.match(line))
        warnings = parse_log(text).warnings
        if path.name.startswith("T12"):
            assert len(warnings) == 1, path.name
            assert "Windows 7" in warnings[0]
        else:
            assert warnings == (), path.name


# Inputs that make a careless regex backtrack for minutes (nested or overlapping quantifiers, trailing runs).
# The timeout is a hang guard, not a performance target: each case runs in milliseconds.
_ADVERSARIAL = {
    "long hex run after a colon": "a : " + "0" * 5000 + " ;",
    "many args columns": " : ".join(["fffff800`62a08bb5"] * 2000),
    "os line with a long space run": "Windows 10 Kernel Version 1 MP" + " " * 50000 + "x",
    "field name then spaces": "ABC_DEF:" + " " * 50000 + "x",
    "lm row with long name and spaces": "ffffffff ffffffff " + "a" * 5000 + " " * 5000 + "(",
    "many blank lines between name and code": "NAME_X" + "\n" * 10000 + " (c)",
    "quotes and semicolons": "0: kd> .echo " + '"' * 10000 + ";" * 10000,
    "unclosed source brackets": "ffffffff ffffffff nt!x " + "[a @ 1" * 10000,
    "key value spaces": "    Key  : " + " " * 50000,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", list(_ADVERSARIAL.values()), ids=list(_ADVERSARIAL))
def test_adversarial_lines_do_not_hang(text: str) -> None:
    _check(text)
    _check("\n".join([text] * 3))
