"""The cdb/kd engine: the console debugger driven over pipes with pexpect's PopenSpawn, on every OS.

Command line: ``cdb -z DUMP [-y SYMPATH] -lines``. Each command is followed by ``.echo <random token>``; the
command's output is everything before that token printed on its own line, so no prompt regex decides
where output ends (prompts are only trimmed from the edges). One engine class uses ``PopenSpawn`` on
Windows and POSIX alike, so the tests on Linux exercise the Windows code path against ``dbgauto shell``
standing in for cdb.

Failure handling: a command that outruns its timeout gets a break (Ctrl+Break / SIGINT), then the whole
process tree is killed, the session is marked dead and :class:`CommandTimeoutError` is raised; a debugger
that exits mid-command raises :class:`EngineCrashedError` with its last output.

Processes (:mod:`dbgauto.util.proc`): the debugger starts in its own process group
(``CREATE_NEW_PROCESS_GROUP`` given explicitly on Windows, a new session elsewhere) and, on Windows, inside a
kill-on-close Job Object, so a batch worker killed mid-dump never leaves ``cdb.exe`` holding the dump;
``taskkill /T`` is only the fallback when no job could be made. Output is decoded with the console code page
cdb writes (:func:`dbgauto.util.proc.console_encoding`), never ``getpreferredencoding()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Final

from pexpect.popen_spawn import PopenSpawn
from pexpect.spawnbase import SpawnBase

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
from dbgauto.engines.locate import find_debugger
from dbgauto.errors import (
    CommandTimeoutError,
    DumpNotFoundError,
    EngineCrashedError,
    EngineError,
    EngineUnavailableError,
)
from dbgauto.util import proc as procs

__all__ = ["CdbEngine", "CdbSession"]

log = logging.getLogger(__name__)

_PROMPT_HEAD: Final = re.compile(r"\A(?:\d+: )?kd> ")
_LAST_PROMPT: Final = re.compile(r"((?:\d+: )?kd> )\Z")
_PROMPT_TAIL: Final = re.compile(r"(?:\d+: )?kd> \Z")
_OPEN_FAILED: Final = re.compile(
    r"^.*(?:Could not open dump file|Could not match Dump File signature|cannot open DumpFile).*$", re.M
)
_BREAK_GRACE: Final = 1.0
_QUIT_GRACE: Final = 5.0
_TAIL_CHARS: Final = 2000


class CdbEngine(Engine):
    """cdb.exe (or kd.exe, or any program that behaves like them) found by :mod:`dbgauto.engines.locate`."""

    capabilities = (
        Capability.RUN_COMMANDS
        | Capability.ANY_COMMAND
        | Capability.SYMBOLS
        | Capability.WRITE_SMALL_DUMP
        | Capability.COMMAND_TIMEOUT
    )

    def __init__(
        self,
        debugger_path: str | None = None,
        *,
        kind: str = "cdb",
        extra_args: tuple[str, ...] = (),
        encoding: str | None = None,
    ) -> None:
        self.debugger_path = debugger_path
        self.kind = kind
        self.name = kind
        self.extra_args = extra_args
        # the console code page cdb writes on Windows; the stand-in console writes UTF-8 elsewhere
        self.encoding = encoding or procs.console_encoding()

    def available(self) -> Availability:
        try:
            cand = find_debugger(self.debugger_path, kind=self.kind)
        except Exception as exc:  # never raises: a broken registry or a bad quote is a reason, not a crash
            return Availability(False, f"cannot look for {self.kind}: {type(exc).__name__}: {exc}")
        if cand is None:
            if self.debugger_path:
                return Availability(False, f"--debugger-path {self.debugger_path!r} does not name a program")
            where = "PATH, DBGAUTO_CDB" + (", Windows Kits and WinDbg folders" if sys.platform == "win32" else "")
            hint = "" if sys.platform == "win32" else " (not Windows: Debugging Tools for Windows cannot run here)"
            return Availability(False, f"{self.kind}.exe not found in {where}{hint}")
        return Availability(True, f"found {cand.display} ({cand.source})", None, cand.display)

    def open(
        self,
        dump: os.PathLike[str] | str,
        *,
        symbol_path: str | None = None,
        timeout: float = DEFAULT_OPEN_TIMEOUT,
    ) -> CdbSession:
        cand = find_debugger(self.debugger_path, kind=self.kind)
        if cand is None:
            raise EngineUnavailableError(self.kind, self.available().reason)
        path = Path(dump)
        if not path.is_file():
            raise DumpNotFoundError(path)
        sympath = symbol_path if symbol_path is not None else os.environ.get("_NT_SYMBOL_PATH")
        argv = [*cand.argv, "-z", str(path)]
        if sympath:
            argv += ["-y", sympath]
        argv += ["-lines", *self.extra_args]
        return CdbSession(self.kind, argv, path, timeout=timeout, encoding=self.encoding)


class CdbSession(Session):
    """One debugger process with one dump; dead after a timeout or a crash (open a new one)."""

    def __init__(
        self, engine_name: str, argv: list[str], dump: Path, *, timeout: float, encoding: str = "utf-8"
    ) -> None:
        self.engine_name = engine_name
        self.dump_path = dump
        self.argv = argv
        self._dead: str | None = None
        self._closed = False
        log.debug("starting %s", argv)
        try:
            self._child = _DebuggerSpawn(argv, timeout=timeout, encoding=encoding)
        except OSError as exc:
            raise EngineUnavailableError(engine_name, f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        self.pid: int = self._child.pid
        self._job = procs.new_job()
        if self._job is not None:
            try:
                self._job.assign(self.pid)
            except OSError as exc:  # e.g. already in a job that forbids nesting: taskkill /T is the fallback
                log.debug("%s: not in a job object: %s", argv[0], exc)
                self._job.close()
                self._job = None
        try:
            text = self._sync("(open)", timeout)
        except EngineError:
            self.close()
            raise
        failed = _OPEN_FAILED.search(text)
        if failed:
            self.close()
            raise EngineError(engine_name, f"{dump}: {failed.group(0).strip()}")
        self.banner: Banner = parse_banner(text)  # type: ignore[misc]
        prompt = _LAST_PROMPT.search(text)
        self.prompt = prompt.group(1) if prompt else "kd> "
        self.debugger_version = self.banner.debugger_version

    # -- protocol ---------------------------------------------------------------------------------------------

    def _send(self, line: str, command: str) -> None:
        try:
            self._child.send(line + "\n")
        except (BrokenPipeError, OSError, ValueError):  # it exited, maybe after printing why: read that first
            self._crashed(command, self._remaining_output())

    def _remaining_output(self) -> str:
        """Everything the exited debugger printed that was not read yet (its pipe read to the end)."""
        import pexpect

        with contextlib.suppress(pexpect.TIMEOUT, OSError, ValueError):
            self._child.expect(pexpect.EOF, timeout=_QUIT_GRACE)
        return self._child.before if isinstance(self._child.before, str) else ""

    def _sync(self, command: str, timeout: float) -> str:
        """Send ``.echo TOKEN`` and return everything the debugger printed before TOKEN came back."""
        import pexpect

        token = f"DBGAUTO_SYNC_{secrets.token_hex(12)}"
        self._send(f".echo {token}", command)
        pattern = re.compile(rf"(?:(?<=\n)|(?<=> )){token}\r?\n")
        try:
            index = self._child.expect([pattern, pexpect.EOF, pexpect.TIMEOUT], timeout=timeout, searchwindowsize=4096)
        except (OSError, ValueError):  # the pipe went away under pexpect
            index = 1
        before = self._child.before if isinstance(self._child.before, str) else ""
        if index == 1:
            self._crashed(command, before)
        if index == 2:
            self._timed_out(command, timeout, before)
        return before.replace("\r\n", "\n")

    def _crashed(self, command: str, before: str) -> None:
        status = self._terminate(kill=False)
        self._dead = f"the debugger exited (status {status}) during {command!r}"
        if command == "(open)":  # say why, in the debugger's words (e.g. "Could not open dump file ...")
            last = next((ln.strip() for ln in reversed(before.splitlines()) if ln.strip()), "")
            self._dead = f"the debugger exited (status {status}) while opening {self.dump_path}: {last}"
        raise EngineCrashedError(self.engine_name, self._dead, last_output=_trim_prompts(before)[-_TAIL_CHARS:])

    def _timed_out(self, command: str, timeout: float, before: str) -> None:
        self._break_in()
        self._terminate(kill=True)
        self._dead = f"killed after {command!r} timed out after {timeout:g}s"
        raise CommandTimeoutError(self.engine_name, command, timeout, output=_trim_prompts(before)[-_TAIL_CHARS:])

    def _break_in(self) -> None:
        """Ask the debugger to stop the command (Ctrl+Break on Windows, SIGINT elsewhere), briefly."""
        proc = self._child.proc
        procs.interrupt(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_BREAK_GRACE)

    def _kill_tree(self) -> None:
        proc = self._child.proc
        if proc.poll() is not None and sys.platform == "win32" and self._job is None:
            return
        how = procs.kill_tree(proc, job=self._job)
        log.debug("%s (pid %d): tree killed by %s", self.engine_name, proc.pid, how)

    def _terminate(self, *, kill: bool) -> int | None:
        """Stop the process (kill the tree when asked or when it lingers), reap it, close the pipes."""
        proc = self._child.proc
        if kill:
            self._kill_tree()
        try:
            status = proc.wait(timeout=_QUIT_GRACE)
        except subprocess.TimeoutExpired:
            self._kill_tree()
            status = proc.wait(timeout=_QUIT_GRACE)
        if sys.platform != "win32":
            self._kill_tree()  # grandchildren left in the group, if any
        if self._job is not None:
            self._job.close()  # kill-on-close: nothing the debugger started outlives the session
            self._job = None
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()
        reader = getattr(self._child, "_read_thread", None)
        if reader is not None:
            reader.join(timeout=_QUIT_GRACE)
        with contextlib.suppress(OSError, ValueError):
            if proc.stdout is not None:
                proc.stdout.close()
        self._child.closed = True
        return status

    # -- the Session interface ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed or self._dead is not None

    def _check_usable(self) -> None:
        if self._closed:
            raise EngineError(self.engine_name, f"session on {self.dump_path} is closed")
        if self._dead is not None:
            raise EngineCrashedError(self.engine_name, f"session is dead: {self._dead}; open a new one")

    def run(self, command: str, *, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> CommandResult:
        self._check_usable()
        text = one_command_line(self.engine_name, command)
        if text.lower() in QUIT_COMMANDS:
            self.close()
            return CommandResult(text, "quit:\n", 0.0, self.engine_name, self.debugger_version)
        start = time.perf_counter()
        self._send(text, text)
        raw = self._sync(text, timeout)
        output = _trim_prompts(raw)
        elapsed = time.perf_counter() - start
        check_rejected(self.engine_name, text, output)
        return CommandResult(text, output, elapsed, self.engine_name, self.debugger_version)

    def write_small_dump(self, out: os.PathLike[str] | str, *, overwrite: bool = False) -> Path:
        return write_small_dump_with_command(self, out, overwrite=overwrite)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._child.closed:
            return
        proc = self._child.proc
        if proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self._child.send("q\n")
        try:
            self._terminate(kill=False)
        except subprocess.TimeoutExpired:  # pragma: no cover - kill -9 did not reap in time
            log.warning("%s (pid %d) did not exit", self.engine_name, proc.pid)


class _DebuggerSpawn(PopenSpawn):
    """pexpect's PopenSpawn with the process flags of :func:`dbgauto.util.proc.spawn_kwargs`.

    PopenSpawn takes no ``creationflags``/``start_new_session``; this sets up the same pipes and reader
    thread (pexpect >= 4.9 internals: ``_buf``, ``_read_queue``, ``_read_incoming``) around our Popen.
    """

    def __init__(self, argv: list[str], *, timeout: float, encoding: str) -> None:
        SpawnBase.__init__(self, timeout=timeout, maxread=65536, encoding=encoding, codec_errors="replace")
        self.crlf = self.string_type(os.linesep)
        kwargs = procs.spawn_kwargs()
        if sys.platform == "win32":
            info = subprocess.STARTUPINFO()  # type: ignore[attr-defined]
            info.dwFlags |= subprocess.STARTF_USESHOWWINDOW  # type: ignore[attr-defined]
            kwargs["startupinfo"] = info  # no console window flashing up under Task Scheduler
        self.proc = subprocess.Popen(
            argv, bufsize=0, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs
        )
        self.pid = self.proc.pid
        self.closed = False
        self._buf = self.string_type()
        self._read_queue: queue.Queue[Any] = queue.Queue()
        self._read_thread = threading.Thread(target=self._read_incoming, daemon=True)
        self._read_thread.start()


def _trim_prompts(raw: str) -> str:
    """Drop the prompt printed before the command and the one printed before the sentinel (nothing else)."""
    text = _PROMPT_HEAD.sub("", raw, count=1)
    return _PROMPT_TAIL.sub("", text, count=1)
