"""scripts/make_synth_dumps.py: the sample set the README demo runs on, exercised as a real subprocess."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from dbgauto.kdump import reader

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_synth_dumps.py"
EXPECTED = {  # file → (signature, DumpType offset, DumpType)
    "x64-complete-type1.dmp": (b"PAGEDU64", 0xF98, 1),
    "x64-complete-type5.dmp": (b"PAGEDU64", 0xF98, 5),
    "x64-active-type5.dmp": (b"PAGEDU64", 0xF98, 5),
    "x64-kernel-type6.dmp": (b"PAGEDU64", 0xF98, 6),
    "x86pae-complete-type1.dmp": (b"PAGEDUMP", 0xF88, 1),
    "x86-complete-type5.dmp": (b"PAGEDUMP", 0xF88, 5),
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    proc = _run(str(out), "--ram-mib", "64")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == len(EXPECTED)
    return out


def test_writes_the_varied_set(samples: Path) -> None:
    assert sorted(p.name for p in samples.iterdir()) == sorted(EXPECTED)
    for name, (signature, offset, dump_type) in EXPECTED.items():
        head = (samples / name).read_bytes()[:0x1000]
        assert head[:8] == signature, name
        assert struct.unpack_from("<I", head, offset)[0] == dump_type, name
        assert (samples / name).stat().st_blocks * 512 < 2 << 20, name  # sparse: real data is small


def test_refuses_to_overwrite_without_force(samples: Path) -> None:
    proc = _run(str(samples), "--ram-mib", "64")
    assert proc.returncode == 1
    assert "exists" in proc.stderr
    assert _run(str(samples), "--ram-mib", "64", "--force").returncode == 0


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    proc = _run(str(tmp_path), "--ram-mib", "1")
    assert proc.returncode == 2
    assert "--ram-mib" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_dbgauto_sees_the_intended_varieties(samples: Path) -> None:
    with reader.KernelDump.open(samples / "x64-active-type5.dmp") as dump:
        assert "Active" in dump.variety.name
        assert dump.header.attributes == 0x40
    with reader.KernelDump.open(samples / "x64-complete-type5.dmp") as dump:
        assert "Complete" in dump.variety.name
    with reader.KernelDump.open(samples / "x86pae-complete-type1.dmp") as dump:
        assert dump.header.pae_enabled is True
        assert dump.header.minor_version == 7601
        assert dump.read_virtual(0x82A00000, 2) == b"MZ"
    with reader.KernelDump.open(samples / "x64-kernel-type6.dmp") as dump:
        assert dump.read_virtual(0xFFFFF80312200000, 2) == b"MZ"
        assert dump.header.bugcheck_code == 0x50
