"""Engines: one interface (base.py) over the native engine, cdb/kd (pexpect) and DbgEng (pybag).

``get_engine(name)`` / ``select_engine("auto")`` pick one; each engine module is imported only when used.
"""

from __future__ import annotations

from dbgauto.engines.base import Availability, Banner, Capability, CommandResult, Engine, Session, split_commands
from dbgauto.engines.select import ENGINE_NAMES, all_engines, get_engine, select_engine

__all__ = [
    "ENGINE_NAMES",
    "Availability",
    "Banner",
    "Capability",
    "CommandResult",
    "Engine",
    "Session",
    "all_engines",
    "get_engine",
    "select_engine",
    "split_commands",
]
