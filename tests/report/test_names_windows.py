"""Hazard group 9: report names Windows can create: no reserved device names, no trailing dots or spaces."""

from __future__ import annotations

import ntpath

import pytest

from dbgauto.batch.coordinator import output_key
from dbgauto.report.names import MAX_STEM, safe_stem

# Microsoft, "Naming Files, Paths, and Namespaces": reserved names, also with an extension
RESERVED = ["CON", "PRN", "AUX", "NUL", "COM1", "COM9", "LPT1", "LPT9", "CONIN$", "CONOUT$"]


@pytest.mark.parametrize("name", [*RESERVED, "con.txt", "Nul.dmp", "aux.tar.gz", "com1.", "LPT2 "])
def test_reserved_device_names_are_prefixed(name: str) -> None:
    stem = safe_stem(name)
    assert stem.split(".")[0].upper() not in RESERVED
    assert stem.lstrip("_")


@pytest.mark.parametrize("name", ["report. ", "report...", "report   ", "dump .", ". .", "MEMORY.DMP.  "])
def test_no_trailing_dots_or_spaces(name: str) -> None:
    stem = safe_stem(name)
    assert stem == stem.rstrip(". ")
    assert " " not in stem


def test_names_from_windows_paths_are_bounded_and_keyed() -> None:
    deep = "C:\\" + "\\".join(["folder"] * 60) + "\\" + "x" * 300 + ".dmp"
    stem = safe_stem(ntpath.basename(deep))
    assert len(stem) <= MAX_STEM
    key = output_key(deep)
    assert len(key) <= MAX_STEM + 9
    assert output_key(r"\\filer\crashes\CON") != output_key(r"\\filer\other\CON")
    assert output_key(r"\\filer\crashes\CON").startswith("_CON-")
