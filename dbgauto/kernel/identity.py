"""Who was running on the crashing processor: process image name, pid and tid from the EPROCESS/ETHREAD copies.

Two independent methods, cross-checked:

* **search** (any build, any architecture): EPROCESS.UniqueProcessId is a pointer-sized, non-zero multiple of 4
  below 2**32 followed by ActiveProcessLinks, two pointers into kernel space (true of every NT layout: the
  list entry directly follows the id); the ETHREAD copy must hold the same value as Cid.UniqueProcess, followed
  by Cid.UniqueThread (a non-zero multiple of 4 below 2**32); ImageFileName is a 4-aligned UCHAR[15] after the
  id, holding 3..14 printable ASCII characters (starting with a letter or digit) and NUL padding to the end.
  Every candidate pairing must give the same (pid, tid) and exactly one name must remain, else that field is
  unknown.
* **offset-table** (:mod:`dbgauto.kernel.ntoffsets`, x64 19041-19045 today), trusted only when the KDBG's
  EPROCESS/ETHREAD sizes match, and then validated as before.

When both give a value they must agree, else the field is None ("unknown"), never a guess. ``Identity.method``
names what established the answer: ``search+offset-table`` (both, agreeing), ``search``, ``offset-table``.
"""

from __future__ import annotations

import itertools
import re
import struct
from typing import Final

from dbgauto.kernel.ntoffsets import IMAGE_FILE_NAME_LENGTH, offsets_for
from dbgauto.kernel.parts import Identity, KernelParts

__all__ = ["identify", "identity_of", "search_identity", "table_identity"]

KERNEL_SPACE: Final = {8: 0xFFFF8000_00000000, 4: 0x80000000}
MAX_ID: Final = 1 << 32
MIN_NAME: Final = 3
MAX_PAIRS: Final = 64  # more candidate (pid, tid) pairings than this: the copies are not what we think
_NAME_START: Final = re.compile(rb"(?=[0-9A-Za-z][\x20-\x7e]{2})")  # zero-width: every place a name can start


def _name_at(p: bytes, off: int) -> str | None:
    field = p[off : off + IMAGE_FILE_NAME_LENGTH]
    if len(field) < IMAGE_FILE_NAME_LENGTH:
        return None
    n = field.find(b"\0")
    if n < MIN_NAME or any(field[n:]):
        return None
    text = field[:n]
    if not all(0x20 <= c < 0x7F for c in text) or not chr(text[0]).isalnum():
        return None
    return text.decode("ascii")


def search_identity(process: bytes | None, thread: bytes | None, pointer_size: int) -> Identity:
    """The identity found by the build-independent search (module docstring); fields None when not certain."""
    if not process or not thread or pointer_size not in KERNEL_SPACE:
        return Identity()
    ps, kspace = pointer_size, KERNEL_SPACE[pointer_size]
    code = "Q" if ps == 8 else "I"
    # every aligned word once, then (word, next, next but one) windows: the same candidates as unpacking a
    # triple at each aligned offset, without a struct call per offset
    words = struct.unpack_from(f"<{len(process) // ps}{code}", process)
    pid_offsets: dict[int, list[int]] = {}
    for i, (v, flink, blink) in enumerate(zip(words, words[1:], words[2:], strict=False)):
        if v and v % 4 == 0 and v < MAX_ID and flink >= kspace and blink >= kspace:
            pid_offsets.setdefault(v, []).append(i * ps)
    if not pid_offsets:
        return Identity()
    found: set[tuple[int, int]] = set()
    words = struct.unpack_from(f"<{len(thread) // ps}{code}", thread)
    for pid, tid in itertools.pairwise(words):
        if pid in pid_offsets and tid and tid % 4 == 0 and tid < MAX_ID:
            found.add((pid, tid))
            if len(found) > MAX_PAIRS:
                break
    if len(found) != 1:
        return Identity(method="search") if found else Identity()
    pid, tid = next(iter(found))
    first = min(pid_offsets[pid])
    start = (first + 3 * ps + 3) & ~3
    names: set[str] = set()
    last = -IMAGE_FILE_NAME_LENGTH
    for m in _NAME_START.finditer(process, start):  # only offsets where a name can start (3 printable, alnum first)
        off = m.start()
        if off % 4 or off < last + IMAGE_FILE_NAME_LENGTH:
            continue  # not 4-aligned, or a tail of the name just found, not another field
        n = _name_at(process, off)
        if n is not None:
            names.add(n)
            last = off
    name = next(iter(names)) if len(names) == 1 else None
    return Identity(name, pid, tid, "search")


def table_identity(
    *,
    machine: int,
    build: int | None,
    pointer_size: int,
    kdbg_fields: dict[str, int],
    process: bytes | None,
    thread: bytes | None,
) -> Identity:
    """The identity read at the build table's offsets (None where the table has no row or a check fails)."""
    if process is None or thread is None or not kdbg_fields:
        return Identity()
    row = offsets_for(machine, build, kdbg_fields.get("SizeEProcess"), kdbg_fields.get("SizeEThread"))
    if row is None:
        return Identity()
    ps = pointer_size
    p, t = process, thread
    if row.eprocess_image_file_name + IMAGE_FILE_NAME_LENGTH > len(p) or row.ethread_cid + 2 * ps > len(t):
        return Identity()
    if row.eprocess_unique_process_id + ps > len(p):
        return Identity()
    raw_name = p[row.eprocess_image_file_name : row.eprocess_image_file_name + IMAGE_FILE_NAME_LENGTH].split(b"\0")[0]
    name = raw_name.decode("ascii") if raw_name and all(0x20 <= c < 0x7F for c in raw_name) else None
    code = "Q" if ps == 8 else "I"
    pid_eprocess = struct.unpack_from(f"<{code}", p, row.eprocess_unique_process_id)[0]
    cid_pid, cid_tid = struct.unpack_from(f"<2{code}", t, row.ethread_cid)
    if cid_pid != pid_eprocess or cid_pid % 4 or cid_tid % 4:  # client ids are multiples of 4
        return Identity(name, None, None, "offset-table")
    return Identity(name, cid_pid, cid_tid, "offset-table")


def _agree(a, b):  # type: ignore[no-untyped-def]
    if a is None:
        return b
    if b is None:
        return a
    return a if a == b else None


def identify(
    *,
    machine: int,
    build: int | None,
    pointer_size: int,
    kdbg_fields: dict[str, int],
    process: bytes | None,
    thread: bytes | None,
) -> Identity:
    """The identity established from the copies by both methods, field by field (None where not sure)."""
    found = search_identity(process, thread, pointer_size)
    table = table_identity(
        machine=machine,
        build=build,
        pointer_size=pointer_size,
        kdbg_fields=kdbg_fields,
        process=process,
        thread=thread,
    )
    name = _agree(found.process_name, table.process_name)
    pid = _agree(found.pid, table.pid)
    tid = _agree(found.tid, table.tid)
    if name is None and pid is None and tid is None:
        return Identity()
    methods = [m for m, i in (("search", found), ("offset-table", table)) if i.pid is not None or i.process_name]
    return Identity(name, pid, tid, "+".join(methods) or None)


def identity_of(parts: KernelParts) -> Identity:
    """The identity of the crashing thread's process in ``parts``."""
    return identify(
        machine=parts.machine,
        build=parts.build,
        pointer_size=parts.pointer_size,
        kdbg_fields=parts.kdbg_fields,
        process=parts.process,
        thread=parts.thread,
    )
