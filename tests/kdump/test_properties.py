"""Property tests: mutated headers, sub-headers, bitmaps and run lists give a typed error or a working dump.

Never another exception, never a hang: every size the reader trusts is checked against the file first.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kdump_handmade import PAGE, bitmap_dump, full_dump, page_of, rdmp_dump

from dbgauto.errors import DumpFormatError, MemoryAccessError
from dbgauto.kdump.reader import KernelDump

SETTINGS = settings(
    max_examples=150,
    deadline=None,  # a loaded 2-core box: time per example varies a lot
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)

BASES = {
    "bitmap64": bitmap_dump({p: page_of(p) for p in (1, 2, 5, 9, 40)}, 64, dtb=0x1000),
    "bitmap32": bitmap_dump({p: page_of(p) for p in (1, 3)}, 48, is_64bit=False, dtb=0x1000, pae=1),
    "full64": full_dump([(0, 3), (8, 2)], {0: page_of(0), 9: page_of(9)}, dtb=0x1000),
    "full32": full_dump([(0, 2), (4, 1)], {}, is_64bit=False, dtb=0x1000, pae=0),
    "rdmp8": rdmp_dump([(1, 2), (7, 1)], {}),
    "rdmpA": rdmp_dump([(1, 2), (7, 1)], {}, dump_type=0xA),
}

# Offsets worth hitting: header fields, run table, context, DumpType, sub-headers, bitmaps.
HOT = [0x0, 0x4, 0x10, 0x20, 0x30, 0x5C, 0x64, 0x68, 0x6C, 0x88, 0x90, 0x98, 0xA0, 0xA8, 0x348, 0xF00,
       0xF88, 0xF98, 0x1000, 0x1008, 0x1020, 0x1028, 0x1030, 0x1038, 0x1050, 0x2000, 0x2004, 0x2010, 0x2018,
       0x2020, 0x2028, 0x2030, 0x2038, 0x2040]  # fmt: skip

mutation = st.tuples(
    st.one_of(st.sampled_from(HOT), st.integers(0, 0x3000)),
    st.sampled_from([1, 2, 4, 8]),
    st.one_of(
        st.integers(0, 2**64 - 1),
        st.sampled_from([0, 1, 2, 4, 5, 6, 8, 0xA, 0x45474150, 0xFFFFFFFF, 2**63, 2**40, 0x1000, 0x2000]),
    ),
)


def _exercise(data: bytes) -> None:
    fd, name = tempfile.mkstemp(suffix=".dmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            dump = KernelDump.open(Path(name))
        except DumpFormatError:
            return
        with dump:
            _ = (dump.header, dump.variety, dump.pages_present, dump.pages_total, dump.summary())
            for pa in (0, 0x1000, 0x2000, 0x5000, 0x9000, 0x28000, 2**40):
                try:
                    dump.read_physical(pa, 16)
                    dump.read_physical(pa, 2 * PAGE, zero_fill=True)
                except MemoryAccessError:
                    pass
            for va in (0x1000, 0xFFFFF800_00001000, 0x8000_0000):
                with contextlib.suppress(MemoryAccessError, DumpFormatError):
                    dump.read_virtual(va, 32)
    finally:
        Path(name).unlink()


@SETTINGS
@given(base=st.sampled_from(sorted(BASES)), mutations=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_dumps_fail_cleanly_or_work(base: str, mutations: list[tuple[int, int, int]]) -> None:
    data = bytearray(BASES[base])
    for off, width, value in mutations:
        if off + width <= len(data):
            data[off : off + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    _exercise(bytes(data))


@SETTINGS
@given(base=st.sampled_from(sorted(BASES)), cut=st.integers(0, 0x8000))
def test_truncated_dumps_fail_cleanly_or_work(base: str, cut: int) -> None:
    _exercise(BASES[base][:cut])


@SETTINGS
@given(bitmap=st.binary(min_size=8, max_size=8), present=st.integers(0, 80), first=st.integers(0, 0x4000))
def test_random_bitmaps_and_counts(bitmap: bytes, present: int, first: int) -> None:
    data = bytearray(bitmap_dump({1: page_of(1)}, 64))
    data[0x2038:0x2040] = bitmap
    struct.pack_into("<QQ", data, 0x2020, first, present)
    data += bytes(PAGE * 4)
    _exercise(bytes(data))
