"""Write a crash's KernelParts as a small memory dump (``.dump /m`` natively); the data-block policy is in
:mod:`.policy`. Who writes a small dump (this native writer or a debugger) is the engines' decision:
:func:`dbgauto.engines.jobs.convert_dump`.
"""

from __future__ import annotations

from .write import build_small_dump, write_small_dump

__all__ = ["build_small_dump", "write_small_dump"]
