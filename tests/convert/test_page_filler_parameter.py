"""Fuzz finding: a bug check parameter still holding the "PAGE" filler in a large dump made the data-block policy
raise TypeError (``convert`` exited 3). Now the parameter is absent: convert succeeds, and the small dump keeps the
filler in that slot (absent stays absent), the other parameters unchanged."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path
from typing import Any

from dbgauto_testkit import dumpinflate, dumpsynth

from dbgauto.engines.jobs import convert_dump

PAGE64 = struct.unpack("<Q", b"PAGEPAGE")[0]


def test_page_filler_bugcheck_parameter(small: Any, tmp_path: Path) -> None:
    world = dumpinflate.build_world(small)
    space = dumpinflate.build_space(world)
    fields = dumpinflate.header_fields(world.small)
    p1, p2, _p3, p4 = fields.bugcheck_parameters or (1, 2, 3, 4)
    params = (p1, p2, PAGE64, p4)
    fields = dataclasses.replace(fields, bugcheck_parameters=params)
    src = tmp_path / "filler.dmp"
    dumpsynth.write_full_dump(src, space, fields=fields)
    raw = src.read_bytes()
    assert struct.unpack_from("<4Q", raw, 0x40)[2] == PAGE64  # DUMP_HEADER64 BugCheckParameter1..4 at 0x40
    res = convert_dump(src, tmp_path / "out.dmp")
    out = res.output.read_bytes()
    assert struct.unpack_from("<4Q", out, 0x40) == params
