"""Process and thread identity from copies of ``_EPROCESS``/``_ETHREAD`` with a table's offsets.

Replaces the per-build offset rows for any build whose table is identified. Cross-checked as the kernel
guarantees: the process has a printable ``ImageFileName``, the thread's ``Cid.UniqueProcess`` equals the
process's ``UniqueProcessId`` and client ids are multiples of 4; otherwise the ids are not reported.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from dbgauto.symbols.table import SymbolTable

__all__ = ["Identity", "process_identity"]

IMAGE_FILE_NAME_LENGTH = 15


class Identity(NamedTuple):
    process_name: str | None
    pid: int | None
    tid: int | None


def process_identity(table: SymbolTable, process: bytes, thread: bytes, pointer_size: int = 8) -> Identity:
    """(image name, pid, tid); None for whatever the table lacks or the bytes do not support."""
    name_off = table.field_offset("_EPROCESS", "ImageFileName")
    pid_off = table.field_offset("_EPROCESS", "UniqueProcessId")
    cid_off = table.field_offset("_ETHREAD", "Cid")
    name = None
    if name_off is not None and name_off + IMAGE_FILE_NAME_LENGTH <= len(process):
        raw = bytes(process[name_off : name_off + IMAGE_FILE_NAME_LENGTH]).split(b"\0")[0]
        name = raw.decode("ascii") if raw and all(0x20 <= c < 0x7F for c in raw) else None
    if name is None or pid_off is None or cid_off is None or pid_off + pointer_size > len(process):
        return Identity(name, None, None)
    if cid_off + 2 * pointer_size > len(thread):
        return Identity(name, None, None)
    code = "Q" if pointer_size == 8 else "I"
    (pid,) = struct.unpack_from(f"<{code}", process, pid_off)
    cid_pid, cid_tid = struct.unpack_from(f"<2{code}", thread, cid_off)
    if cid_pid != pid or pid % 4 or cid_tid % 4:
        return Identity(name, None, None)
    return Identity(name, pid, cid_tid)
