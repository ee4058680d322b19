"""Sniff the first bytes of a file: is it a kernel dump, 32- or 64-bit, and of which DumpType.

Why a separate step: the CLI and the batch discovery want to know what a file is without building anything
(no run table, no bitmap), and the reader wants one place that turns "not a dump" into a clear, typed error
(a user-mode minidump, a hibernation file or a zero-length file each get their own reason).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Final

from dbgauto.errors import BadSignatureError, TruncatedDumpError
from dbgauto.kdump.constants import (
    HEADER32_SIZE,
    HEADER64_SIZE,
    SIGNATURE,
    VALID_DUMP32,
    VALID_DUMP64,
)
from dbgauto.util.layout import Buffer
from dbgauto.vocab.machines import machine_enum_name

# Offsets used before the full header is decoded (same values as structs/header.py's tables).
_DUMP_TYPE_OFFSET: Final = {True: 0xF98, False: 0xF88}
_MACHINE_OFFSET: Final = {True: 0x030, False: 0x020}
_U32: Final = struct.Struct("<I")

# Other files people point a dump tool at, recognised so the error says what the file is.
_KNOWN_OTHERS: Final = {
    b"MDMP": "a user-mode minidump (MDMP), not a kernel dump",
    b"USER": "a legacy user-mode dump (USERDUMP), not a kernel dump",
    b"hibr": "a hibernation file, not a crash dump",
    b"HIBR": "a hibernation file, not a crash dump",
    b"wake": "a hibernation file, not a crash dump",
    b"Dump": "a secondary-data blob file (DumpBlob), not a dump",
    b"MZ\x90\x00": "a PE image, not a dump",
}


@dataclass(frozen=True, slots=True)
class Sniff:
    """What the first header page says, before anything else is read."""

    is_64bit: bool
    header_size: int
    dump_type: int
    machine: int

    @property
    def machine_name(self) -> str:
        return machine_enum_name(self.machine) or f"unknown ({self.machine:#x})"


def describe_non_dump(head: bytes) -> str:
    """A reason for a file whose first bytes are not PAGEDUMP / PAGEDU64."""
    for magic, what in _KNOWN_OTHERS.items():
        if head.startswith(magic):
            return what
    if head[:4] == SIGNATURE:
        return f"signature PAGE followed by {head[4:8]!r}, expected b'DUMP' or b'DU64'"
    return f"not a kernel dump: first bytes {head[:8]!r}, expected b'PAGEDUMP' or b'PAGEDU64'"


def sniff(buf: Buffer, file_size: int, path: os.PathLike[str] | str | None = None) -> Sniff:
    """Classify ``buf`` (the file's first bytes, at least a header's worth when the file has that many).

    Raises :class:`TruncatedDumpError` for files too short to hold their header and
    :class:`BadSignatureError` for anything that is not PAGEDUMP / PAGEDU64.
    """
    head = bytes(memoryview(buf)[:8])
    if file_size == 0:
        raise TruncatedDumpError(path, "empty file, not a dump", expected=8, actual=0)
    if len(head) < 8:
        if (SIGNATURE + VALID_DUMP64).startswith(head) or (SIGNATURE + VALID_DUMP32).startswith(head):
            raise TruncatedDumpError(path, "file ends inside the signature", expected=8, actual=file_size)
        raise BadSignatureError(path, describe_non_dump(head))
    if head == SIGNATURE + VALID_DUMP64:
        is_64bit = True
    elif head == SIGNATURE + VALID_DUMP32:
        is_64bit = False
    else:
        raise BadSignatureError(path, describe_non_dump(head))
    header_size = HEADER64_SIZE if is_64bit else HEADER32_SIZE
    if file_size < header_size or len(buf) < header_size:
        kind = "64-bit" if is_64bit else "32-bit"
        raise TruncatedDumpError(
            path, f"{kind} dump header is truncated", expected=header_size, actual=min(file_size, len(buf))
        )
    (dump_type,) = _U32.unpack_from(buf, _DUMP_TYPE_OFFSET[is_64bit])
    if dump_type == 0xFFFFFFFF:
        dump_type = -1
    (machine,) = _U32.unpack_from(buf, _MACHINE_OFFSET[is_64bit])
    return Sniff(is_64bit=is_64bit, header_size=header_size, dump_type=dump_type, machine=machine)


def sniff_path(path: os.PathLike[str] | str) -> Sniff:
    """Read just the header page of ``path`` and classify it (no mmap)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(HEADER64_SIZE)
    return sniff(data, size, path)
