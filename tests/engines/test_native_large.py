"""The native engine on large dumps rebuilt from the real small dump (dbgauto_testkit.dumpinflate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dbgauto_testkit import dumpinflate

from dbgauto.engines.native import NativeEngine
from dbgauto.kdump.reader import KernelDump


@pytest.fixture(scope="module", params=[1, 6], ids=["complete", "kernel-bitmap"])
def large_dump(request: pytest.FixtureRequest, triage_x64_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("large") / f"type{request.param}.dmp"
    dumpinflate.inflate(triage_x64_path, out, dump_type=request.param)
    return out


def test_large_dump_answers_like_the_small_one(
    large_dump: Path, triage_x64_path: Path, groundtruth_x64: dict[str, Any], tmp_path: Path
) -> None:
    with NativeEngine().open(large_dump) as big, NativeEngine().open(triage_x64_path) as small:
        kind = big.banner.dump_kind
        assert kind is not None
        assert kind.startswith(("Kernel Complete Dump File", "Kernel Bitmap Dump File"))
        for command in ("vertarget", ".bugcheck", "lm", "r"):
            assert big.run(command).output == small.run(command).output, command
        assert len(big.target.modules) == len(groundtruth_x64["drivers"])
        assert big.target.process_name == groundtruth_x64["process"]["image_file_name"]
        before = set(tmp_path.iterdir())
        out = big.write_small_dump(tmp_path / "from-large.dmp")
        assert set(tmp_path.iterdir()) - before == {out}  # no temporary small dump: the parts are in memory
        with KernelDump.open(out) as written:
            assert int(written.dump_type) == 4
            assert written.header.bugcheck_code == int(groundtruth_x64["bugcheck_code"], 16)
