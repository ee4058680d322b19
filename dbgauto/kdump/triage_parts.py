"""Plain values a small dump lists: loaded and unloaded drivers, as the writer takes them.

Kept apart from the writer so that the conversion layer (which gathers these from a large dump) can build them
without importing the writer and its output machinery.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DriverSpec", "UnloadedSpec"]


@dataclass(frozen=True, slots=True)
class DriverSpec:
    """A loaded driver to list (LoadedDriver from the reader fits the same shape)."""

    name: str | None
    base: int
    size: int
    timestamp: int = 0
    checksum: int = 0


@dataclass(frozen=True, slots=True)
class UnloadedSpec:
    """An unloaded driver; Windows keeps only the first 12 characters of the name."""

    name: str
    start: int
    end: int
    name_length: int | None = None  # bytes; default min(2*len(name), 24)
