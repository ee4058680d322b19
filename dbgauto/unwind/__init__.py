"""Stack unwinding over an abstract memory reader: x64 unwind data, ARM64/x86 frame-pointer chains, a filtered
scan; every frame says how it was found (``context``, ``cfi``, ``frame-pointer``, ``scan``)."""

from dbgauto.unwind.model import TRUSTS, Frame, ImageSource, Memory, Module, ModuleMap, StackWalk, TrapContext, Trust
from dbgauto.unwind.walk import unwind

__all__ = [
    "TRUSTS",
    "Frame",
    "ImageSource",
    "Memory",
    "Module",
    "ModuleMap",
    "StackWalk",
    "TrapContext",
    "Trust",
    "unwind",
]
