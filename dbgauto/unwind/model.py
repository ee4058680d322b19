"""What an unwinder consumes and produces: memory, modules, frames labelled with how they were found.

Trust labels follow rust-minidump's FrameTrust: ``context`` (registers given to us: the exception/trap
context, or its link register), ``cfi`` (the image's unwind data, x64 UNWIND_INFO), ``frame-pointer`` (a
validated rbp/ebp/x29 chain) and ``scan`` (a stack word that points just after a call in executable code).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from dbgauto.pe import PeImage
from dbgauto.util.frozen import fast_init

Trust = Literal["context", "cfi", "frame-pointer", "scan"]
TRUSTS: Final = ("context", "cfi", "frame-pointer", "scan")

Memory = Callable[[int, int], bytes | bytearray | memoryview | None]
"""``read(va, size)`` → exactly ``size`` bytes, or None when the memory is not available."""

ImageSource = Callable[["Module"], PeImage | None]
"""Gives a module's image (read from memory, an image store or a file), or None."""

TrapContext = Callable[["Frame"], Mapping[str, int] | None]
"""Given a frame, the full register set of the context it interrupted (a _KTRAP_FRAME), or None."""


@fast_init
@dataclass(frozen=True, slots=True)
class Module:
    name: str
    base: int
    size: int

    def contains(self, va: int) -> bool:
        return self.base <= va < self.base + self.size


@fast_init
@dataclass(frozen=True, slots=True)
class Frame:
    """One frame. ``pc`` is the instruction pointer (a return address for every frame but context ones);
    ``offset`` is ``pc - module.base``. ``trap_frame`` is set when the next frame comes from a trap context."""

    index: int
    pc: int
    sp: int
    trust: Trust
    module: str | None = None
    offset: int | None = None
    fp: int | None = None
    trap_frame: bool = False


@dataclass(slots=True)
class StackWalk:
    arch: str
    frames: list[Frame] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def pcs(self) -> list[int]:
        return [f.pc for f in self.frames]


class ModuleMap:
    """Modules sorted by base for O(log n) lookups, with each module's image fetched once (lazily)."""

    def __init__(self, modules: list[Module] | tuple[Module, ...], image_for: ImageSource | None = None) -> None:
        self.modules = sorted((m for m in modules if m.size > 0), key=lambda m: m.base)
        self._bases = [m.base for m in self.modules]
        self._image_for = image_for
        self._images: dict[int, PeImage | None] = {}
        self.warnings: list[str] = []

    def find(self, va: int) -> Module | None:
        i = bisect.bisect_right(self._bases, va) - 1
        if i >= 0 and self.modules[i].contains(va):
            return self.modules[i]
        return None

    def image(self, module: Module) -> PeImage | None:
        if module.base in self._images:
            return self._images[module.base]
        img = None
        if self._image_for is not None:
            try:
                img = self._image_for(module)
            except Exception as e:  # a broken image is a warning: unwinding falls back to other methods
                self.warnings.append(f"{module.name}: image unavailable ({e})")
                img = None
        self._images[module.base] = img
        return img

    def image_warnings(self) -> list[str]:
        """Warnings the images fetched so far recorded (damaged directories, unreadable records)."""
        names = {m.base: m.name for m in self.modules}
        return [
            f"{names.get(b, hex(b))}: {w}" for b, img in self._images.items() if img is not None for w in img.warnings
        ]

    def is_code(self, va: int) -> bool | None:
        """True/False when the module's section table says so; None when ``va`` is in a module without an image."""
        m = self.find(va)
        if m is None:
            return False
        img = self.image(m)
        if img is None:
            return None
        return img.is_executable_rva(va - m.base)
