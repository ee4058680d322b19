"""Choosing an engine by name, or automatically: dbgeng if usable, else cdb if found, else native."""

from __future__ import annotations

from dbgauto.engines.base import Availability, Engine
from dbgauto.errors import EngineUnavailableError

__all__ = ["ENGINE_CHOICES", "ENGINE_HELP", "ENGINE_NAMES", "all_engines", "get_engine", "select_engine"]

ENGINE_NAMES = ("auto", "native", "cdb", "kd", "dbgeng")
ENGINE_CHOICES = ("native", "cdb", "kd", "dbgeng", "auto")
"""The ``--engine`` choice every command offers, in this order."""
ENGINE_HELP = (
    "native: pure Python, any OS; cdb / kd: drive that debugger (found on PATH, the Windows Kits or "
    "--debugger-path); dbgeng: DbgEng through pybag (Windows); auto: dbgeng if usable, else cdb, else native."
)
"""The ``--engine`` help text every command shows."""


def get_engine(name: str, *, debugger_path: str | None = None) -> Engine:
    """The engine called ``name`` (not checked for availability; ``open`` raises if it cannot run)."""
    key = name.lower()
    if key == "native":
        from dbgauto.engines.native import NativeEngine

        return NativeEngine()
    if key in ("cdb", "kd"):
        from dbgauto.engines.cdb import CdbEngine

        return CdbEngine(debugger_path, kind=key)
    if key == "dbgeng":
        from dbgauto.engines.dbgeng import DbgEngEngine

        return DbgEngEngine()
    if key == "auto":
        return select_engine("auto", debugger_path=debugger_path)[0]
    raise EngineUnavailableError(name, f"unknown engine (choose from {', '.join(ENGINE_NAMES)})")


def all_engines(*, debugger_path: str | None = None) -> list[tuple[Engine, Availability]]:
    """Every engine with its availability, in the order ``auto`` prefers them."""
    engines = [get_engine(n, debugger_path=debugger_path) for n in ("dbgeng", "cdb", "kd", "native")]
    return [(e, e.available()) for e in engines]


def select_engine(name: str = "auto", *, debugger_path: str | None = None) -> tuple[Engine, str]:
    """(engine, why). ``auto``: dbgeng if usable, else cdb if found, else native; a named engine must be usable."""
    if name.lower() != "auto":
        engine = get_engine(name, debugger_path=debugger_path)
        avail = engine.available()
        if not avail.ok:
            raise EngineUnavailableError(engine.name, avail.reason)
        return engine, f"{engine.name}: asked for by name ({avail.reason})"
    skipped = []
    order = ["dbgeng", "cdb", "native"]
    if debugger_path:  # an explicit debugger means the user wants it driven, not DbgEng
        order = ["cdb", "native"]
        skipped.append("dbgeng: not tried because --debugger-path names a debugger")
    for key in order:
        engine = get_engine(key, debugger_path=debugger_path)
        avail = engine.available()
        if avail.ok:
            why = f"{engine.name}: {avail.reason}"
            if skipped:
                why += "; " + "; ".join(skipped)
            return engine, why
        skipped.append(f"{engine.name} unusable: {avail.reason}")
    raise EngineUnavailableError("auto", "; ".join(skipped))  # pragma: no cover - native is always available
