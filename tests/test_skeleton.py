"""The package imports, the CLI answers, and the error tree keeps its promises."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dbgauto import errors
from dbgauto.util.layout import Layout


def test_cli_help_lists_every_subcommand() -> None:
    out = subprocess.run([sys.executable, "-m", "dbgauto", "--help"], capture_output=True, text=True, check=True)
    for name in ("info", "convert", "report", "batch", "shell", "run", "doctor"):
        assert name in out.stdout


def test_errors_share_a_root_and_mix_in_builtins() -> None:
    assert issubclass(errors.DumpNotFoundError, FileNotFoundError)
    assert issubclass(errors.OutputExistsError, FileExistsError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.DbgautoError)
    e = errors.TruncatedDumpError("x.dmp", "bitmap", expected=0x3000, actual=0x2000, offset=0x2000)
    assert str(e) == "x.dmp, offset 0x2000: bitmap (needs 0x3000 bytes, file has 0x2000)"
    assert e.code == "truncated"


def test_layout_rejects_overlap_and_round_trips() -> None:
    with pytest.raises(ValueError, match="overlaps"):
        Layout("bad", [("a", 0, "Q"), ("b", 4, "I")], 16)
    lay = Layout("t", [("sig", 0, "4s"), ("n", 4, "I"), ("arr", 8, "2Q")], 0x20)
    buf = lay.pack({"sig": b"ABCD", "n": 7}, fill=b"PAGE")
    got = lay.unpack(buf, page_fill_absent=True)
    assert got == {"sig": b"ABCD", "n": 7, "arr": None}
    assert bytes(buf[8:0x18]) == b"PAGE" * 4
