"""The driver records a small dump lists: one type for the reader, the writer, the kernel walk and the engines.

Kept apart from the reader and the writer so that every layer above (kernel walking, conversion, engines) can
build and pass them without importing either.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbgauto.util.frozen import fast_init

__all__ = ["LoadedDriver", "UnloadedDriver"]


@fast_init
@dataclass(frozen=True, slots=True)
class LoadedDriver:
    """One loaded module: full NT path (None when unreadable), image range, and the PE header's stamp/checksum."""

    name: str | None
    base: int
    size: int
    timestamp: int = 0
    checksum: int = 0

    @property
    def base_name(self) -> str:
        return self.name.rsplit("\\", 1)[-1] if self.name else f"driver@{self.base:#x}"


@fast_init
@dataclass(frozen=True, slots=True)
class UnloadedDriver:
    """An unloaded driver (DUMP_UNLOADED_DRIVERS / MI_UNLOADED_DRIVERS); Windows keeps 12 characters of the name."""

    name: str
    start: int
    end: int
    name_length: int | None = None  # UNICODE_STRING.Length in bytes as stored; writer default min(2*len(name), 24)
