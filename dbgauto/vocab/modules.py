"""How the debugger names a module: the kernel image is ``nt``, every other image its file name without extension.

One home for the rule the native engine's output, the symbol layer and the verdict all print.
"""

from __future__ import annotations

import functools
import re
from typing import Final

__all__ = ["KERNEL_IMAGES", "module_file_name", "module_short_name"]

KERNEL_IMAGES: Final = frozenset({"ntoskrnl.exe", "ntkrnlmp.exe", "ntkrnlpa.exe", "ntkrpamp.exe", "ntkrla57.exe"})
"""The kernel image's file names (uniprocessor/multiprocessor, PAE, 5-level paging builds)."""


@functools.lru_cache(maxsize=8192)  # a pure function of the name; a batch sees the same few hundred names
def module_file_name(name_or_path: str) -> str:
    """The last component of a Windows or POSIX path."""
    return re.split(r"[\\/]", name_or_path.strip())[-1]


@functools.lru_cache(maxsize=8192)
def module_short_name(name_or_path: str) -> str:
    """``nt`` for the kernel image, otherwise the file name without its extension (``amdppm.sys`` → ``amdppm``)."""
    image = module_file_name(name_or_path)
    stem, dot, _ext = image.rpartition(".")
    if image.lower() in KERNEL_IMAGES or (dot and f"{stem.lower()}.exe" in KERNEL_IMAGES):
        return "nt"
    return stem if dot else image
