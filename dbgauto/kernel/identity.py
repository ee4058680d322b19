"""Who was running on the crashing processor: process image name, pid and tid from the EPROCESS/ETHREAD copies.

Today from the build's offset table (:mod:`dbgauto.kernel.ntoffsets`), cross-validated: ETHREAD.Cid.UniqueProcess
must equal EPROCESS.UniqueProcessId, client ids are multiples of 4, the name is printable ASCII. Anything that does
not check out is None ("unknown"), never a guess.
"""

from __future__ import annotations

import struct

from dbgauto.kernel.ntoffsets import IMAGE_FILE_NAME_LENGTH, offsets_for
from dbgauto.kernel.parts import Identity, KernelParts

__all__ = ["identify", "identity_of"]


def identify(
    *,
    machine: int,
    build: int | None,
    pointer_size: int,
    kdbg_fields: dict[str, int],
    process: bytes | None,
    thread: bytes | None,
) -> Identity:
    """The identity established from the copies, field by field (None where not sure)."""
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
