"""The DbgEng engine: the Windows debugger engine in-process, through pybag (Windows only).

VERIFIED ONLY ON WINDOWS (by ``scripts/windows_smoke.py``); on Linux only the session logic is tested,
through the :class:`DbgEngAdapter` seam below driven by a real Python object.

pybag 2.2.16 cannot open dumps through its API (``CrashDbg.load_dump`` calls ``OpenDumpFile``, whose wrapper
raises E_NOTIMPL), so the dump is opened through the raw COM interface (``OpenDumpFileWide`` on
``dbg._client._cli``, then ``WaitForEvent``), falling back to ``.opendump PATH`` + go. Output is captured
with pybag's ``cmd()`` (its output callbacks); small dumps are written with ``.dump /m /o``. DbgEng allows
one session per process: a second concurrent :meth:`DbgEngEngine.open` raises, and the batch layer runs
one dump per worker process. ``import pybag`` happens only inside :meth:`PybagAdapter.open_dump`, because
pybag looks for WinDbg at import time.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Final, Protocol

from dbgauto.engines.base import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_OPEN_TIMEOUT,
    QUIT_COMMANDS,
    Availability,
    Banner,
    Capability,
    CommandResult,
    Engine,
    Session,
    check_rejected,
    one_command_line,
    parse_banner,
    write_small_dump_with_command,
)
from dbgauto.errors import (
    CommandTimeoutError,
    DebuggerCommandError,
    DumpNotFoundError,
    EngineCrashedError,
    EngineError,
    EngineUnavailableError,
)

__all__ = ["DbgEngAdapter", "DbgEngEngine", "DbgEngSession", "PybagAdapter"]

log = logging.getLogger(__name__)

ENGINE_NAME: Final = "dbgeng"
_INTERRUPT_GRACE: Final = 2.0
_VERSION_RE: Final = re.compile(r"Debugger Version\s+(\S+)")
# DbgEng constants (dbgeng.h as bundled with pybag): DEBUG_INTERRUPT_ACTIVE, DEBUG_END_PASSIVE
DEBUG_INTERRUPT_ACTIVE: Final = 0
DEBUG_END_PASSIVE: Final = 0

_session_lock = threading.Lock()  # one DbgEng session per process
_stuck: threading.Thread | None = None  # a timed-out command still running inside DbgEng (keeps the lock)


class DbgEngAdapter(Protocol):
    """The seam: the only calls DbgEngSession makes into DbgEng (PybagAdapter on Windows)."""

    def open_dump(self, path: str, timeout: float) -> None:
        """Load the dump and wait until the engine has broken in; raise on failure."""

    def execute(self, command: str) -> str:
        """Run one command and return its captured output (blocks; may never return)."""

    def interrupt(self) -> None:
        """Ask the engine to stop the running command (SetInterrupt)."""

    def version(self) -> str | None:
        """The engine's version text, e.g. "10.0.26100.1"."""

    def end(self) -> None:
        """End the session and release the engine."""


class PybagAdapter:
    """DbgEngAdapter over pybag's CrashDbg. Windows only; verified by scripts/windows_smoke.py, not by CI."""

    def __init__(self) -> None:
        self._dbg: Any = None

    def open_dump(self, path: str, timeout: float) -> None:
        import pybag  # only here: pybag locates WinDbg at import time

        self._dbg = pybag.CrashDbg()
        try:
            self._dbg._client._cli.OpenDumpFileWide(path, 0)
            ok = self._dbg.wait(max(1, int(timeout)))
        except Exception as exc:  # comtypes.COMError, pybag's E_*_Error, AttributeError if pybag's layout changed
            log.debug("raw OpenDumpFileWide failed (%s); trying .opendump", exc)
            ok = self._open_with_command(path, timeout)
        if ok is False:
            raise EngineError(ENGINE_NAME, f"{path}: DbgEng did not finish loading within {timeout:g}s")

    def _open_with_command(self, path: str, timeout: float) -> bool:
        self._dbg.cmd(f'.opendump "{path}"')
        return bool(self._dbg.go(max(1, int(timeout))) is not False)

    def execute(self, command: str) -> str:
        return str(self._dbg.cmd(command, quiet=True))

    def interrupt(self) -> None:
        self._dbg._control.SetInterrupt(DEBUG_INTERRUPT_ACTIVE)

    def version(self) -> str | None:
        m = _VERSION_RE.search(self.execute("version"))
        return m.group(1) if m else None

    def end(self) -> None:
        if self._dbg is None:
            return
        try:
            self._dbg._client.EndSession(DEBUG_END_PASSIVE)
        finally:
            self._dbg.Release()
            self._dbg = None


class DbgEngEngine(Engine):
    """DbgEng through pybag; ``adapter_factory`` is the seam (PybagAdapter unless a test passes another)."""

    name = ENGINE_NAME
    capabilities = (
        Capability.RUN_COMMANDS
        | Capability.ANY_COMMAND
        | Capability.SYMBOLS
        | Capability.WRITE_SMALL_DUMP
        | Capability.COMMAND_TIMEOUT
    )

    def __init__(self, adapter_factory: Any = None) -> None:
        self._factory = adapter_factory

    def available(self) -> Availability:
        try:
            return self._available()
        except Exception as exc:  # never raises
            return Availability(False, f"cannot check DbgEng: {type(exc).__name__}: {exc}")

    def _available(self) -> Availability:
        if self._factory is not None:
            return Availability(True, "test adapter (not DbgEng)")
        if sys.platform != "win32":
            return Availability(False, f"not Windows ({sys.platform}): DbgEng is a Windows DLL")
        try:
            spec = importlib.util.find_spec("pybag")
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            return Availability(False, "pybag not installed (pip install 'dbgauto[dbgeng]' or pip install pybag)")
        windbg = _windbg_dir()
        if windbg is None:
            return Availability(False, "pybag is installed but no WinDbg / Debugging Tools folder was found")
        return Availability(True, f"pybag with the debugger DLLs in {windbg}", None, str(windbg))

    def open(
        self,
        dump: os.PathLike[str] | str,
        *,
        symbol_path: str | None = None,
        timeout: float = DEFAULT_OPEN_TIMEOUT,
    ) -> DbgEngSession:
        avail = self.available()
        if not avail.ok:
            raise EngineUnavailableError(ENGINE_NAME, avail.reason)
        path = Path(dump)
        if not path.is_file():
            raise DumpNotFoundError(path)
        adapter = self._factory() if self._factory is not None else PybagAdapter()
        return DbgEngSession(adapter, path, symbol_path=symbol_path, timeout=timeout)


def _windbg_dir() -> Path | None:
    """Where pybag will find dbgeng.dll: WINDBG_DIR, else a Windows Kits or Store folder (as pybag looks)."""
    env = os.environ.get("WINDBG_DIR")
    if env and (Path(env) / "dbgeng.dll").is_file():
        return Path(env)
    from dbgauto.engines.locate import candidates

    for cand in candidates(kind="cdb"):
        if cand.source not in ("--debugger-path", "DBGAUTO_CDB", "PATH"):
            folder = Path(cand.argv[0]).parent
            if (folder / "dbgeng.dll").is_file():
                return folder
    return None


class DbgEngSession(Session):
    """The one DbgEng session of this process. Dead after a timeout: DbgEng cannot be killed in-process."""

    engine_name = ENGINE_NAME

    def __init__(self, adapter: DbgEngAdapter, path: Path, *, symbol_path: str | None, timeout: float) -> None:
        global _stuck
        if _stuck is not None:
            if _stuck.is_alive():
                raise EngineError(
                    ENGINE_NAME,
                    "a timed-out command is still running inside DbgEng in this process; DbgEng cannot be reset"
                    " in-process: run each dump in its own process",
                )
            _stuck = None
            _session_lock.release()
        if not _session_lock.acquire(blocking=False):
            raise EngineError(ENGINE_NAME, "one DbgEng session per process: close the other session first")
        self._worker: threading.Thread | None = None
        self._adapter = adapter
        self.dump_path = path
        self._closed = False
        self._dead: str | None = None
        try:
            if symbol_path:
                self._call(f".sympath {symbol_path}", lambda: adapter.execute(f".sympath {symbol_path}"), timeout)
            self._call("(open)", lambda: adapter.open_dump(str(path), timeout), timeout)
            self.debugger_version = self._call("version", adapter.version, timeout)
            vt = self._call("vertarget", lambda: adapter.execute("vertarget"), timeout)
        except BaseException:
            self.close()
            raise
        # DbgEng prints no banner of its own: the version line cdb would print, then vertarget's lines
        version = self.debugger_version
        head = f"Microsoft (R) Windows Debugger Version {version}\n" if version else ""
        self.banner: Banner = parse_banner(head + str(vt))  # type: ignore[misc]

    def _call(self, command: str, fn: Any, timeout: float) -> Any:
        """Run ``fn`` on a worker thread; on timeout interrupt DbgEng, mark the session dead and raise."""
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed to the caller's thread below
                box["error"] = exc

        worker = threading.Thread(target=work, name=f"dbgeng {command}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            try:
                self._adapter.interrupt()
            except Exception as exc:  # the engine may be wedged; the session is dead either way
                log.debug("interrupt failed: %s", exc)
            worker.join(_INTERRUPT_GRACE)
            self._worker = worker
            self._dead = f"{command!r} timed out after {timeout:g}s"
            raise CommandTimeoutError(ENGINE_NAME, command, timeout)
        if "error" in box:
            exc = box["error"]
            if isinstance(exc, (EngineError, KeyboardInterrupt, SystemExit)):
                raise exc
            if _is_command_failure(exc) and command != "(open)":
                raise DebuggerCommandError(ENGINE_NAME, command, f"DbgEng rejected it: {exc}") from exc
            self._dead = f"DbgEng failed during {command!r}: {type(exc).__name__}: {exc}"
            raise EngineCrashedError(ENGINE_NAME, self._dead) from exc
        return box.get("value")

    @property
    def closed(self) -> bool:
        return self._closed or self._dead is not None

    def run(self, command: str, *, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> CommandResult:
        if self._closed:
            raise EngineError(ENGINE_NAME, f"session on {self.dump_path} is closed")
        if self._dead is not None:
            raise EngineCrashedError(ENGINE_NAME, f"session is dead: {self._dead}; start a new process")
        text = one_command_line(ENGINE_NAME, command)
        if text.lower() in QUIT_COMMANDS:
            self.close()
            return CommandResult(text, "quit:\n", 0.0, ENGINE_NAME, self.debugger_version)
        start = time.perf_counter()
        output = self._call(text, lambda: self._adapter.execute(text), timeout)
        output = str(output).replace("\r\n", "\n")
        check_rejected(ENGINE_NAME, text, output)
        return CommandResult(text, output, time.perf_counter() - start, ENGINE_NAME, self.debugger_version)

    def write_small_dump(self, out: os.PathLike[str] | str, *, overwrite: bool = False) -> Path:
        return write_small_dump_with_command(self, out, overwrite=overwrite)

    def close(self) -> None:
        global _stuck
        if self._closed:
            return
        self._closed = True
        try:
            if self._worker is None or not self._worker.is_alive():
                self._adapter.end()
        except Exception as exc:  # ending a broken engine must not mask the original error
            log.debug("DbgEng end: %s", exc)
        finally:
            if self._worker is not None and self._worker.is_alive():
                _stuck = self._worker  # the lock stays held until that command returns
            else:
                _session_lock.release()


def _is_command_failure(exc: BaseException) -> bool:
    """A failed HRESULT from Execute (pybag's E_*_Error, comtypes' COMError): the command failed, not DbgEng."""
    return any(cls.__name__.startswith("E_") or cls.__name__ == "COMError" for cls in type(exc).__mro__)
