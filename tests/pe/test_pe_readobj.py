"""The PE reader against llvm-readobj on images clang/lld built for x64, ARM64 and x86 (PE32+ and PE32)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from dbgauto_testkit.winbuild import CHAIN_C, VERSION_RC, build, describe, readobj, unwind_entries

from dbgauto.pe import PeImage

MACHINES = {"x64": 0x8664, "arm64": 0xAA64, "x86": 0x14C}


@pytest.fixture(scope="module", params=["x64", "arm64", "x86"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    arch = request.param
    return arch, build(tmp_path_factory.mktemp(f"pe_{arch}"), "chain", arch, c_source=CHAIN_C)


def _images(path: Path) -> list[PeImage]:
    """The same image three ways: file bytes, laid out as mapped, and through a read(va, size) callable."""
    data = path.read_bytes()
    info = describe(path)
    mapped = bytearray(info.size_of_image)
    mapped[: info.size_of_headers] = data[: info.size_of_headers]
    for s in info.sections:
        n = min(s["raw_size"], s["virtual_size"] or s["raw_size"])
        mapped[s["rva"] : s["rva"] + n] = data[s["raw_offset"] : s["raw_offset"] + n]
    base = 0xFFFFF80012340000

    def read(va: int, size: int) -> bytes | None:
        off = va - base
        return bytes(mapped[off : off + size]) if off >= 0 and off + size <= len(mapped) else None

    return [
        PeImage.from_bytes(data, name=path.name),
        PeImage.from_bytes(mapped, name=path.name, mapped=True),
        PeImage.from_memory(read, base, name=path.name),
    ]


def test_headers_and_sections(built: tuple[str, Path]) -> None:
    arch, path = built
    info = describe(path)
    for img in _images(path):
        assert img.machine == MACHINES[arch] == info.machine
        assert img.arch == arch
        assert img.is_pe32_plus == (arch != "x86")
        assert img.image_base == info.image_base
        assert img.size_of_image == info.size_of_image
        assert [s.name for s in img.sections] == [s["name"] for s in info.sections]
        for ours, theirs in zip(img.sections, info.sections, strict=True):
            assert (ours.rva, ours.virtual_size, ours.raw_size, ours.raw_offset, ours.characteristics) == (
                theirs["rva"],
                theirs["virtual_size"],
                theirs["raw_size"],
                theirs["raw_offset"],
                theirs["characteristics"],
            )
            assert ours.is_executable == bool(theirs["characteristics"] & 0x20000000)
        for index, name in enumerate(("ExportTable", "ImportTable", "ResourceTable", "ExceptionTable")):
            rva, size = info.directories[name]
            assert (img.directories[index].rva, img.directories[index].size) == (rva, size)


def test_exports(built: tuple[str, Path]) -> None:
    _, path = built
    info = describe(path)
    for img in _images(path):
        assert {e.name: e.rva for e in img.exports() if e.name} == info.exports
        assert img.is_executable_rva(info.exports["top_a"])
        assert not img.is_executable_rva(info.exports["sink"])


def test_codeview(built: tuple[str, Path]) -> None:
    _, path = built
    text = readobj(path, "--coff-debug-directory")
    raw = bytes(int(x, 16) for x in re.search(r"PDBGUID: \(([0-9A-F ]+)\)", text).group(1).split())
    age = int(re.search(r"PDBAge: (\d+)", text).group(1))
    pdb = re.search(r"PDBFileName: (.+)", text).group(1).strip()
    for img in _images(path):
        cv = img.codeview()
        assert cv is not None
        assert cv.guid == str(uuid.UUID(bytes_le=raw)).upper()
        assert cv.age == age
        assert cv.pdb_name == pdb
        assert cv.symbol_key == uuid.UUID(bytes_le=raw).hex.upper() + f"{age:X}"


def test_exception_directory(built: tuple[str, Path]) -> None:
    arch, path = built
    for img in _images(path):
        table = img.exception_table()
        if arch == "x86":
            assert table is None  # x86 images have no RUNTIME_FUNCTION table
            continue
        assert table is not None
        expected = unwind_entries(path)
        got = [(e.begin, e.end, e.unwind_rva) for e in table]
        assert got == expected
        for begin, end, _ in expected:
            assert table.lookup(begin) is not None
            assert table.lookup(begin).begin == begin
            assert table.lookup(end - 1).begin == begin
        assert table.lookup(expected[-1][1] + 0x10000) is None


def test_version_resource(tmp_path: Path) -> None:
    """Values from the .rc source we compiled with llvm-rc (FILEVERSION 10,0,19041,3803 ...)."""
    path = build(tmp_path, "ver", "x64", c_source=CHAIN_C, rc=VERSION_RC)
    for img in _images(path):
        v = img.version_info()
        assert v is not None
        assert v.file_version == "10.0.19041.3803"
        assert v.product_version == "10.0.19041.1"
        assert v.company_name == "Contoso Drivers Ltd."
        assert v.product_name == "Contoso Widget"
        assert v.file_version_string == "10.0.19041.3803 (WinBuild.160101.0800)"


def test_no_version_resource(built: tuple[str, Path]) -> None:
    _, path = built
    assert all(img.version_info() is None for img in _images(path))


def test_driver_image(tmp_path: Path) -> None:
    """/driver images (the kind in kernel dumps) read the same way; subsystem NATIVE from llvm-readobj."""
    path = build(tmp_path, "drv", "x64", c_source=CHAIN_C, link=("/driver", "/noentry", "/dll", "/subsystem:native"))
    text = readobj(path, "--file-headers")
    sub = int(re.search(r"Subsystem: \S+ \((0x[0-9A-F]+)\)", text).group(1), 16)
    img = PeImage.from_bytes(path.read_bytes())
    assert img.subsystem == sub == 1
