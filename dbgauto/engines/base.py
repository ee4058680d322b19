"""The one interface every engine implements: an Engine opens a dump and yields a Session that runs commands.

Three engines stand behind it: ``native`` (pure Python, any OS), ``cdb`` (cdb.exe / kd.exe driven over pipes
with pexpect) and ``dbgeng`` (DbgEng in-process through pybag, Windows only). Callers depend on this module
only; :func:`dbgauto.engines.select.get_engine` picks the implementation.
"""

from __future__ import annotations

import abc
import contextlib
import enum
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from dbgauto.errors import DebuggerCommandError, EngineError, OutputExistsError

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT",
    "DEFAULT_OPEN_TIMEOUT",
    "QUIT_COMMANDS",
    "Availability",
    "Banner",
    "Capability",
    "CommandResult",
    "Engine",
    "Session",
    "check_rejected",
    "one_command_line",
    "split_commands",
    "write_small_dump_with_command",
]

DEFAULT_COMMAND_TIMEOUT: Final = 120.0
DEFAULT_OPEN_TIMEOUT: Final = 300.0  # loading a dump can mean downloading symbols
QUIT_COMMANDS: Final = frozenset({"q", "qq", "qd"})  # end the session (every engine answers "quit:")


class Capability(enum.Flag):
    """What an engine can do; callers check these instead of engine names."""

    NONE = 0
    RUN_COMMANDS = enum.auto()  # answers debugger commands
    ANY_COMMAND = enum.auto()  # any debugger command, not a fixed subset
    SYMBOLS = enum.auto()  # resolves symbols (function names in stacks, real !analyze)
    WRITE_SMALL_DUMP = enum.auto()  # .dump /m
    COMMAND_TIMEOUT = enum.auto()  # a hung command is killed, not waited for
    ANY_OS = enum.auto()  # runs without Windows


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether an engine can run here; ``reason`` says why not (or what was found) in one line."""

    ok: bool
    reason: str
    version: str | None = None
    location: str | None = None  # where the debugger was found, when that applies

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True, slots=True)
class CommandResult:
    """One command's text output, how long it took, and who answered it."""

    command: str
    output: str
    elapsed: float
    engine: str
    debugger_version: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "output": self.output,
            "elapsed": round(self.elapsed, 6),
            "engine": self.engine,
            "debugger_version": self.debugger_version,
        }


@dataclass(frozen=True, slots=True)
class Banner:
    """What the debugger says when it opens a dump (every field None when the line is absent)."""

    debugger_version: str | None = None
    dump_kind: str | None = None  # "Mini Kernel Dump File: Only registers and stack trace are available"
    os_line: str | None = None  # "Windows 10 Kernel Version 19041 MP (16 procs) Free x64"
    build: int | None = None
    kernel_base: int | None = None
    ps_loaded_module_list: int | None = None
    session_time: str | None = None  # as printed: "Sun Feb 21 01:38:22.987 2021 (UTC + 0:00)"
    uptime: str | None = None  # as printed: "0 days 0:00:03.747"
    raw: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "debugger_version": self.debugger_version,
            "dump_kind": self.dump_kind,
            "os_line": self.os_line,
            "build": self.build,
            "kernel_base": self.kernel_base,
            "ps_loaded_module_list": self.ps_loaded_module_list,
            "session_time": self.session_time,
            "uptime": self.uptime,
        }


def parse_banner(text: str) -> Banner:
    """The few banner lines the engines keep (version, dump kind, OS build, bases, times); tolerant of gaps.

    Read by :func:`dbgauto.debugtext.parse_banner`, the one reader of debugger banners (imported here,
    not at module load, so that opening an engine module stays cheap).
    """
    from dbgauto.debugtext import parse_banner as parse_banner_text

    info = parse_banner_text(text)
    return Banner(
        debugger_version=info.debugger_version,
        dump_kind=info.dump_kind_line,
        os_line=info.os.raw if info.os is not None else None,
        build=info.build,
        kernel_base=info.kernel_base,
        ps_loaded_module_list=info.ps_loaded_module_list,
        session_time=info.debug_session_time_raw,
        uptime=info.uptime_raw,
        raw=text,
    )


def split_commands(line: str) -> list[str]:
    """The commands of one command line, split on ``;`` as the debugger does; comments are left out.

    Splitting is :func:`dbgauto.debugtext.split_command_line` (quotes, braces, ``.echo``, ``j``); the
    comments it keeps whole are not executed: ``$$ text`` (ends at the next ``;``) and ``* text`` (the rest of
    the line), so ``r eax; $$ note; r ebx; * more; r ecx`` runs ``r eax`` and ``r ebx``.
    """
    from dbgauto.debugtext import split_command_line

    return [c for c in split_command_line(line) if not c.startswith(("$$", "*"))]


class Session(abc.ABC):
    """An open dump in one engine. Use as a context manager; after close() every call raises."""

    engine_name: str = "?"
    debugger_version: str | None = None
    banner: Banner | None = None
    prompt: str = "0: kd> "  # how a log of this session shows the prompt
    dump_path: Path

    @abc.abstractmethod
    def run(self, command: str, *, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> CommandResult:
        """Run one debugger command and return its text output."""

    @abc.abstractmethod
    def write_small_dump(self, out: os.PathLike[str] | str, *, overwrite: bool = False) -> Path:
        """Write a small memory dump (``.dump /m``) of the open dump to ``out``; returns the path written."""

    @abc.abstractmethod
    def close(self) -> None:
        """End the session; idempotent."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool: ...

    def run_many(self, commands: str | list[str], *, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> list[CommandResult]:
        """Run ``"cmd; cmd"`` (or a list) one command at a time, stopping at ``q``."""
        items = split_commands(commands) if isinstance(commands, str) else list(commands)
        results = []
        for cmd in items:
            if cmd.lower() in QUIT_COMMANDS:
                break
            results.append(self.run(cmd, timeout=timeout))
        return results

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Engine(abc.ABC):
    """A way to answer debugger commands on a dump. ``available()`` never raises."""

    name: str = "?"
    capabilities: Capability = Capability.NONE

    @abc.abstractmethod
    def available(self) -> Availability:
        """Can this engine run here? Never raises; the reason is one line a user can act on."""

    @abc.abstractmethod
    def open(
        self,
        dump: os.PathLike[str] | str,
        *,
        symbol_path: str | None = None,
        timeout: float = DEFAULT_OPEN_TIMEOUT,
    ) -> Session:
        """Open ``dump``; raises EngineUnavailableError, DumpNotFoundError, DumpFormatError, EngineError."""


# -- shared by the sessions that drive a real debugger (cdb/kd over pipes, DbgEng in-process) -------------------

_REJECTED: Final = re.compile(
    r"^(?:\s*\^ [\w ]*error in '.*|No export \S+ found.*|Couldn't resolve error at .*)$", re.M
)


def one_command_line(engine: str, command: str) -> str:
    """``command`` stripped; a line break would let one call run several commands, so it is refused."""
    text = command.strip()
    if "\n" in text or "\r" in text:
        raise DebuggerCommandError(engine, command, "one command line at a time (no line breaks)")
    return text


def check_rejected(engine: str, command: str, output: str) -> None:
    """Raise DebuggerCommandError when the output carries the debugger's "command rejected" lines."""
    rejected = _REJECTED.search(output)
    if rejected is None:
        return
    lines = [rejected.group(0).strip()]
    following = output[rejected.end() :].lstrip("\n").split("\n", 1)[0]
    if following.startswith("***"):
        lines.append(following.lstrip("* ").strip())
    raise DebuggerCommandError(engine, command, " - ".join(lines), output=output)


def write_small_dump_with_command(session: Session, out: os.PathLike[str] | str, *, overwrite: bool) -> Path:
    """``.dump /m /o`` into a temporary name beside ``out``, then one rename (never a half-written file)."""
    from dbgauto.util.atomic import publish

    target = Path(out).resolve()
    if target.exists() and not overwrite:
        raise OutputExistsError(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    try:
        result = session.run(f'.dump /m /o "{partial}"', timeout=DEFAULT_OPEN_TIMEOUT)
        if not partial.is_file() or "successfully written" not in result.output.lower():
            detail = result.output.strip()[-300:]
            raise EngineError(session.engine_name, f".dump /m did not write {target}: {detail}")
        with open(partial, "rb+") as fh:  # the debugger wrote it; make it durable before it becomes visible
            os.fsync(fh.fileno())
        publish(partial, target, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return target
