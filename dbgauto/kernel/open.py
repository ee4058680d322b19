"""One entry point: the KernelParts of any open dump (small: its sections; large: a kernel walk)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbgauto.kdump.constants import DumpType

if TYPE_CHECKING:
    from dbgauto.kdump.reader import KernelDump
    from dbgauto.kernel.kdbg import KdbgKeys
    from dbgauto.kernel.memory import DumpMemory
    from dbgauto.kernel.parts import KernelParts

__all__ = ["read_parts"]


def read_parts(dump: KernelDump, *, memory: DumpMemory | None = None, keys: KdbgKeys | None = None) -> KernelParts:
    """The crash's parts. Raises ConversionError when a large dump lacks an essential (no memory, no KDBG, ...)."""
    if dump.dump_type == DumpType.TRIAGE:
        from dbgauto.kernel.smalldump import small_dump_parts

        return small_dump_parts(dump)
    from dbgauto.errors import ConversionError
    from dbgauto.kernel.walk import walk_kernel

    if not dump.has_physical_memory:
        raise ConversionError(f"{dump.path}: DumpType {int(dump.dump_type)} holds no physical memory")
    return walk_kernel(dump, memory=memory, keys=keys)
