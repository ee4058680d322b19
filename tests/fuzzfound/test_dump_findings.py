"""Each input fuzzing broke a dump reader with, rebuilt minimally, and what must happen instead.

Offsets are the documented TRIAGE_DUMP64 / KDDEBUGGER_DATA64 ones (``../shared/spec``): the triage header at
0x2000, SizeOfCallStack at +0x2C; the KDBG header's OwnerTag at +0x10 and Size at +0x14.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from dbgauto_testkit.triage_handmade import NT_BASE, build_handmade

from dbgauto.cli import cli
from dbgauto.errors import DbgautoError
from dbgauto.kdump.reader import KernelDump

T = 0x2000


def _info(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["info", *args])
    return res.exit_code, res.stdout, res.stderr


@pytest.mark.parametrize("size", [0x10, 0x11, 0x12, 0x13, 0x14, 0x17])
def test_kdbg_header_size_inside_the_header(tmp_path: Path, size: int) -> None:
    """KDBG Size 0x10-0x13 cut the OwnerTag off (KeyError 'OwnerTag'; "internal error"); now a warning."""
    hm = build_handmade()
    data = bytearray(hm.data)
    struct.pack_into("<I", data, hm.offsets["kdbg"] + 0x14, size)
    path = tmp_path / "kdbg_size.dmp"
    path.write_bytes(bytes(data))
    code, out, err = _info(str(path))
    assert code == 0, err
    assert "internal error" not in err
    assert "KDBG header's Size field is smaller than the header" in out or "debugger_data" in out
    code, out, err = _info("--json", str(path))
    assert code == 0, err


def test_triage_after_close_is_a_typed_error(tmp_path: Path) -> None:
    """Reading ``triage`` after ``close()`` raised ValueError (closed mmap); now DumpFormatError."""
    path = tmp_path / "t.dmp"
    path.write_bytes(build_handmade().data)
    dump = KernelDump.open(path)
    dump.close()
    with pytest.raises(DbgautoError, match="closed"):
        _ = dump.triage


def test_call_stack_covering_the_file_is_capped_in_info(tmp_path: Path) -> None:
    """SizeOfCallStack over the whole file (full of kernel pointers) printed megabytes; now capped, and says so."""
    hm = build_handmade()
    data = bytearray(hm.data)
    stack_off = hm.offsets["stack"]
    data += bytes(-(len(data) - stack_off) % 8)  # the appended values aligned as stack slots
    data += struct.pack("<Q", NT_BASE + 0x1234) * 0x4000  # 16,384 values that point into nt
    struct.pack_into("<I", data, T + 0x2C, len(data) - stack_off)
    path = tmp_path / "bigstack.dmp"
    path.write_bytes(bytes(data))
    code, out, err = _info(str(path))
    assert code == 0, err
    assert len(out) < 64_000, len(out)
    assert "more not shown" in out
