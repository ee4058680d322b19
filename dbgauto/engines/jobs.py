"""The jobs every front end asks of an engine: facts of a dump, a small dump of it, or both from one session.

Engines are the only place that decides who writes a small dump (dbgauto's native writer or the debugger's own
``.dump /m``) and ``auto`` means one thing everywhere: :func:`dbgauto.engines.select.select_engine` (DbgEng if
usable, else cdb, else native). A native session reads the dump's parts once, so facts, conversion and the
debugger-style commands of one task share one open file, one hash and one walk of the kernel.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from dbgauto.engines.base import Engine, Session
from dbgauto.engines.native import NativeEngine, NativeSession
from dbgauto.engines.select import get_engine, select_engine
from dbgauto.errors import ConversionError, EngineUnavailableError, OutputExistsError

if TYPE_CHECKING:
    from dbgauto.analysis.facts import CrashFacts
    from dbgauto.kernel.kdbg import KdbgKeys

__all__ = [
    "ENGINE_COMMANDS",
    "OUTPUT_SUFFIX",
    "ConvertResult",
    "convert_dump",
    "debugger_facts",
    "debugger_symbol_path",
    "default_output",
    "facts_from_dump",
    "open_session",
    "resolve_engine",
]

ENGINE_COMMANDS: Final = ("vertarget", "!analyze -v", "lm", "kv")
OUTPUT_SUFFIX: Final = ".mini.dmp"


@dataclass
class ConvertResult:
    """What one conversion produced."""

    output: Path
    size: int
    engine: str
    debugger_version: str | None = None
    warnings: list[str] = field(default_factory=list)
    source_dump_type: int = 0
    elapsed: float = 0.0


def resolve_engine(name: str | Engine) -> Engine:
    """An engine object from a name, resolved once (``auto`` by :func:`select_engine`); usable or raises."""
    if isinstance(name, Engine):
        return name
    if name.lower() == "native":
        return NativeEngine()
    if name.lower() == "auto":
        return select_engine("auto")[0]
    engine = get_engine(name)
    avail = engine.available()
    if not avail.ok:
        raise EngineUnavailableError(engine.name, avail.reason or "not available")
    return engine


def open_session(
    path: os.PathLike[str] | str,
    engine: str | Engine = "native",
    *,
    digest: str | None = None,
    keys: KdbgKeys | None = None,
    symbol_path: str | None = None,
) -> Session:
    """Open ``path`` in ``engine``; a native session reuses ``digest`` (the file's identity hash) and ``keys`` (an
    encoded KDBG's keys) when given. ``symbol_path``: ``--symbols`` as given (None: the environment's)."""
    eng = resolve_engine(engine)
    if isinstance(eng, NativeEngine):
        return eng.open_hashed(path, digest=digest, keys=keys, symbol_path=symbol_path)
    return eng.open(path, symbol_path=debugger_symbol_path(symbol_path))


def debugger_symbol_path(argument: str | None) -> str | None:
    """What a debugger engine gets: ``--symbols``, else ``DBGAUTO_SYMBOL_PATH``; None lets the debugger read
    ``_NT_SYMBOL_PATH`` itself (and never hands it dbgauto's default cache as a surprise)."""
    if argument is not None:
        return argument
    from dbgauto.symbols.sympath import resolve_symbol_path

    r = resolve_symbol_path(None)
    return r.path.text if r.source == "DBGAUTO_SYMBOL_PATH" else None


# --------------------------------------------------------------------------- facts


def debugger_facts(session: Session, *, digest: str | None = None) -> CrashFacts:
    """Facts from a debugger session: :data:`ENGINE_COMMANDS` run one by one, each answer parsed as the command's
    own block (no log is faked), completed by the dump header where the debugger said less."""
    from dbgauto.analysis.facts import source_fact
    from dbgauto.analysis.from_dump import header_facts
    from dbgauto.analysis.from_log import facts_from_parsed
    from dbgauto.debugtext import CommandBlock, parse_blocks

    path = session.dump_path
    blocks: list[CommandBlock] = []
    version: str | None = None
    for command in ENGINE_COMMANDS:
        result = session.run(command)
        version = version or result.debugger_version
        blocks.append(CommandBlock(prompt="0: kd> ", cpu=0, command=command, output=result.output, commands=(command,)))
    src = source_fact(path, digest=digest)
    facts = facts_from_parsed(parse_blocks(blocks), source=None)
    header: dict[str, Any] = {"source": src}
    try:  # the file's own header fills what the debugger output may not show
        from dbgauto.kdump.reader import KernelDump

        with KernelDump.open(path) as dump:
            header = header_facts(dump, src, engine=session.engine_name)
    except Exception as exc:  # the debugger opened it; our reader need not
        header["warnings"] = (*facts.warnings, f"native header not read: {exc}")
    merged = {k: v for k, v in header.items() if v is not None and getattr(facts, k, None) in (None, {}, ())}
    merged.update(engine=session.engine_name, engine_version=version)
    return replace(facts, **merged)


def session_facts(session: Session, *, digest: str | None = None) -> CrashFacts:
    """The facts of an open session's dump, whichever engine it is."""
    if isinstance(session, NativeSession):
        return session.facts()
    return debugger_facts(session, digest=digest)


def facts_from_dump(
    path: os.PathLike[str] | str, *, engine: str | Engine = "native", symbol_path: str | None = None
) -> CrashFacts:
    """Facts for one dump file through ``engine`` (``native`` by default), with symbols from ``symbol_path``."""
    with open_session(path, engine, symbol_path=symbol_path) as session:
        return session_facts(session)


# --------------------------------------------------------------------------- small dumps


def default_output(src: os.PathLike[str] | str, out_dir: os.PathLike[str] | str | None = None) -> Path:
    """``<stem>.mini.dmp`` next to the source, or in ``out_dir``."""
    s = Path(src)
    folder = Path(out_dir) if out_dir is not None else s.parent
    return folder / f"{s.stem}{OUTPUT_SUFFIX}"


def _resolve_output(src: Path, out: os.PathLike[str] | str | None) -> Path:
    if out is None:
        return default_output(src)
    o = Path(out)
    return default_output(src, o) if o.is_dir() else o


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def check_output(source: Path, target: Path, *, overwrite: bool) -> None:
    """Refuse an output that would replace the source, or an existing file without ``overwrite``."""
    if _same_file(source, target) or source.resolve() == target.resolve():
        raise ConversionError(f"{source}: the output would replace the source dump")
    if target.exists() and not overwrite:
        raise OutputExistsError(target)


def write_from_session(session: Session, target: Path, *, overwrite: bool) -> ConvertResult:
    """The session's dump as a small memory dump at ``target`` (native writer or the debugger's ``.dump /m``)."""
    started = time.perf_counter()
    check_output(session.dump_path, target, overwrite=overwrite)
    if isinstance(session, NativeSession):
        written, warnings = session.write_small_dump_noting(target, overwrite=overwrite)
        dump_type = int(session.target.dump_type or 0)
    else:
        written, warnings = Path(session.write_small_dump(target, overwrite=overwrite)), []
        if not written.exists():
            raise ConversionError(f"{session.dump_path}: {session.engine_name} reported success but wrote no {written}")
        from dbgauto.kdump.detect import sniff_path

        dump_type = int(sniff_path(session.dump_path).dump_type)
    return ConvertResult(
        output=written,
        size=written.stat().st_size,
        engine=session.engine_name,
        debugger_version=session.debugger_version,
        warnings=warnings,
        source_dump_type=dump_type,
        elapsed=time.perf_counter() - started,
    )


def convert_dump(
    src: os.PathLike[str] | str,
    out: os.PathLike[str] | str | None = None,
    *,
    engine: str | Engine = "native",
    overwrite: bool = False,
    keys: KdbgKeys | None = None,
    symbol_path: str | None = None,
) -> ConvertResult:
    """Convert the dump ``src`` into a small memory dump at ``out`` (a file, a folder, or None).

    Raises ConversionError (essentials missing), DumpFormatError (bad source), OutputExistsError, and for a debugger
    engine its EngineUnavailableError. The source is never modified.
    """
    source = Path(src)
    target = _resolve_output(source, out)
    check_output(source, target, overwrite=overwrite)
    with open_session(source, engine, keys=keys, symbol_path=symbol_path) as session:
        return write_from_session(session, target, overwrite=overwrite)
