"""Bad PE input: a typed ImageFormatError naming the image for broken headers; optional parts come back None
with a warning; nothing hangs or allocates from a claimed size (fuzzed from a real clang/lld image)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from dbgauto_testkit.winbuild import CHAIN_C, VERSION_RC, build
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbgauto.errors import DbgautoError, ImageFormatError
from dbgauto.pe import PeImage


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build(tmp_path_factory.mktemp("bad"), "ver", "x64", c_source=CHAIN_C, rc=VERSION_RC).read_bytes()


def _lfanew(data: bytes) -> int:
    return struct.unpack_from("<I", data, 0x3C)[0]


def _patch(data: bytes, off: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: b"ZM" + d[2:], "no MZ signature"),
        (lambda d: _patch(d, 0x3C, "<I", 0x7FFFFFF0), "e_lfanew"),
        (lambda d: _patch(d, _lfanew(d), "<I", 0x4550_4550), "no PE signature"),
        (lambda d: _patch(d, _lfanew(d) + 6, "<H", 0xFFFF), "sections"),
        (lambda d: _patch(d, _lfanew(d) + 24, "<H", 0x999), "magic"),
        (lambda d: _patch(d, _lfanew(d) + 20, "<H", 0x10), "optional header is"),
        (lambda d: d[:0x100], "not readable"),
        (lambda d: b"", "not readable"),
    ],
)
def test_broken_headers_raise_typed_error(image: bytes, mutate, reason: str) -> None:
    with pytest.raises(ImageFormatError, match=reason) as e:
        PeImage.from_bytes(mutate(image), name="broken.sys")
    assert "broken.sys" in str(e.value)


def test_memory_reader_failures_are_typed(image: bytes) -> None:
    def boom(va: int, size: int) -> bytes:
        raise OSError("paged out")

    with pytest.raises(ImageFormatError, match="not readable"):
        PeImage.from_memory(boom, 0x1000, name="paged.sys")
    with pytest.raises(ImageFormatError):
        PeImage.from_memory(lambda va, size: None, 0x1000, name="paged.sys")


def test_huge_claimed_exception_table_is_bounded(image: bytes) -> None:
    img = PeImage.from_bytes(image)
    opt = _lfanew(image) + 24
    exc_dir = opt + 0x70 + 3 * 8
    bad = _patch(image, exc_dir + 4, "<I", 0x4000_0000)  # 1 GiB of RUNTIME_FUNCTIONs
    big = PeImage.from_bytes(bad)
    table = big.exception_table()
    assert table is not None
    assert table.count <= (img.size_of_image - img.directory(3).rva) // 12
    assert any("past the image end" in w for w in big.warnings)
    assert table.lookup(0x1000) is not None or table.lookup(0x1000) is None  # answers, bounded
    assert sum(1 for _ in table) <= table.count


def test_debug_and_resource_pointing_outside(image: bytes) -> None:
    opt = _lfanew(image) + 24
    dirs = opt + 0x70
    bad = _patch(_patch(image, dirs + 6 * 8, "<I", 0x7FFF0000), dirs + 2 * 8, "<I", 0x7FFF0000)
    img = PeImage.from_bytes(bad, name="x.sys")
    assert img.codeview() is None
    assert img.version_info() is None
    assert img.warnings


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 0x1FFF), st.integers(0, 255)), min_size=1, max_size=24))
def test_fuzzed_images_never_raise_anything_else(image: bytes, edits: list[tuple[int, int]]) -> None:
    b = bytearray(image)
    for off, val in edits:
        if off < len(b):
            b[off] = val
    try:
        img = PeImage.from_bytes(bytes(b))
    except DbgautoError:
        return
    img.codeview()
    img.version_info()
    img.exports()
    t = img.exception_table()
    if t is not None:
        list(t)
        t.lookup(0x1010)


def test_rsds_written_by_lld_is_found_through_paged_memory(tmp_path: Path, image: bytes) -> None:
    """An image whose debug data page is not resident: headers work, the CodeView record is None + warning."""
    img = PeImage.from_bytes(image)
    d = img.directory(6)
    base = 0x10000000
    mapped = bytearray(img.size_of_image)
    for s in img.sections:
        raw = img.read_rva(s.rva, min(s.raw_size, s.span))
        mapped[s.rva : s.rva + len(raw)] = bytes(raw)
    mapped[: img.size_of_headers] = image[: img.size_of_headers]
    hole = (d.rva & ~0xFFF, (d.rva & ~0xFFF) + 0x1000)

    def read(va: int, size: int) -> bytes | None:
        off = va - base
        if off < hole[1] and off + size > hole[0]:
            return None
        return bytes(mapped[off : off + size])

    m = PeImage.from_memory(read, base)
    assert m.sections == img.sections
    assert m.codeview() is None
    assert m.warnings
