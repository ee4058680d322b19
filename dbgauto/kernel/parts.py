"""KernelParts: the crash as a small memory dump holds it, read once from whichever dump the user has.

A large dump yields them by walking its kernel (:func:`dbgauto.kernel.walk.walk_kernel`); a small dump carries
them as sections (:func:`dbgauto.kernel.smalldump.small_dump_parts`). Everything above — facts, the native
engine, conversion — starts from this one value, so a dump is opened, walked and read once per task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dbgauto.kdump.header import DumpHeader
    from dbgauto.kdump.records import LoadedDriver, UnloadedDriver
    from dbgauto.kdump.structs.context import CpuContext
    from dbgauto.kernel.kdbg import KdbgBlock

__all__ = ["Identity", "KernelParts", "VirtualReader"]


class VirtualReader(Protocol):
    """Target virtual memory: ``read`` answers the bytes, or None when any of them is not in the dump."""

    def read(self, va: int, size: int) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Identity:
    """Who was running: image name, pid, tid; each None when not established (never a guess)."""

    process_name: str | None = None
    pid: int | None = None
    tid: int | None = None
    method: str | None = None  # how it was established: "offset-table", "search", ...


@dataclass
class KernelParts:
    """What a small memory dump of this crash holds. ``None`` marks what the dump does not carry."""

    header: DumpHeader
    is_64bit: bool
    machine: int
    context: CpuContext | None
    kdbg: KdbgBlock | None
    processor: int | None
    processor_blocks: list[int]
    prcb_va: int | None
    prcb: bytes | None
    thread_va: int | None
    thread: bytes | None
    process_va: int | None
    process: bytes | None
    top_of_stack: int | None
    stack: bytes | None
    stack_base: int | None
    drivers: list[LoadedDriver]
    unloaded_drivers: list[UnloadedDriver] | None
    mm: dict[str, int] | None
    warnings: list[str] = field(default_factory=list)
    memory: VirtualReader | None = field(default=None, repr=False)  # reads beyond the copies (large dumps: all)

    @property
    def kdbg_fields(self) -> dict[str, int]:
        return self.kdbg.fields if self.kdbg is not None else {}

    @property
    def pointer_size(self) -> int:
        return 8 if self.is_64bit else 4

    @property
    def build(self) -> int | None:
        return self.header.minor_version

    @property
    def kernel_base(self) -> int | None:
        """nt's base: the KDBG's KernBase, else the first loaded module (nt is listed first)."""
        base = self.kdbg_fields.get("KernBase")
        if base:
            return base
        return self.drivers[0].base if self.drivers else None
