"""``dbgauto shell DUMP``: a kd-style console over the native engine, usable by people and by programs.

It prints the debugger's banner, then ``N: kd> `` prompts (N = the crashing CPU when the dump records it),
reads one line at a time from stdin (``;`` separates commands), and flushes after every prompt so that it
works over pipes without a terminal. It accepts cdb's command-line flags (``-z DUMP -y PATH -lines -c
"cmds"``), so the cdb engine can drive it as its debugger: that is how the pexpect engine is tested on
machines without Debugging Tools for Windows.

With ``DBGAUTO_SHELL_TEST=1`` a few hidden commands exist for those tests only: ``!dbgauto_hang`` (never
returns), ``!dbgauto_crash`` (the process exits at once), ``!dbgauto_big N`` (N lines of output) and
``!dbgauto_echo TEXT`` (TEXT printed verbatim after ``\\n``-style escapes are expanded).
"""

from __future__ import annotations

import codecs
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from dbgauto.engines.base import QUIT_COMMANDS, split_commands
from dbgauto.errors import DbgautoError, DebuggerCommandError
from dbgauto.util.textsafe import terminal, terminal_line

if TYPE_CHECKING:
    from dbgauto.engines.native import NativeSession

__all__ = ["ShellOptions", "command", "main", "parse_args", "run_console"]

log = logging.getLogger(__name__)

TEST_ENV = "DBGAUTO_SHELL_TEST"
USAGE = (
    "Usage: dbgauto shell DUMP\n"
    '       dbgauto shell -z DUMP [-y SYMPATH] [-c "cmd; cmd"] [cdb flags]\n'
    "At the prompt: help (or ? or .help) lists the commands; q quits.\n"
)
CRASH_EXIT_CODE = 70

# cdb/kd flags that take a value, and the ones that stand alone (accepted and ignored).
_VALUE_FLAGS = {"-z", "-y", "-i", "-c", "-cf", "-cfr", "-logo", "-loga", "-logou", "-logau", "-srcpath", "-zp"}
_VALUE_FLAGS_IGNORED = {"-i", "-cf", "-cfr", "-logo", "-loga", "-logou", "-logau", "-srcpath", "-zp", "-netsyms"}


@dataclass
class ShellOptions:
    dump: str | None = None
    symbol_path: str | None = None
    initial_commands: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def parse_args(argv: list[str]) -> ShellOptions:
    """``[DUMP] [-z DUMP] [-y SYMPATH] [-c "cmds"] [cdb flags...]``; flags are case-insensitive, ``/`` = ``-``."""
    opts = ShellOptions()
    i = 0
    while i < len(argv):
        arg = argv[i]
        flag = "-" + arg[1:].lower() if arg[:1] in "-/" and len(arg) > 1 else None
        if flag == "--symbols":  # dbgauto's own spelling of -y
            flag = "-y"
        if flag in _VALUE_FLAGS or flag == "-netsyms":
            if i + 1 >= len(argv):
                raise SystemExit(f"dbgauto shell: {arg} needs a value")
            value = argv[i + 1]
            if flag == "-z":
                opts.dump = value
            elif flag == "-y":
                opts.symbol_path = value
            elif flag == "-c":
                opts.initial_commands += split_commands(value)
            else:
                opts.ignored += [arg, value]
            i += 2
            continue
        if flag is not None and not Path(arg).exists() and (arg[0] == "-" or ("/" not in arg[1:] and "." not in arg)):
            opts.ignored.append(arg)  # -lines, -n, -v, -kqm, -sins, ...: meaningless without symbols
        elif opts.dump is None:
            opts.dump = arg
        else:
            raise SystemExit(f"dbgauto shell: unexpected argument {arg!r} (one dump per session)")
        i += 1
    return opts


class _Console:
    def __init__(self, session: NativeSession, out: TextIO, *, test_mode: bool) -> None:
        self.session = session
        self.out = out
        self.test_mode = test_mode
        self.prompt = session.prompt  # "N: kd> ", N = the crashing CPU

    def write(self, text: str) -> None:
        self.out.write(text)

    def execute_line(self, line: str, *, echo: bool = False) -> bool:
        """Run every command of ``line``; False when one of them was ``q``."""
        for command in split_commands(line):
            if echo:
                self.write(f"{self.prompt}{command}\n")
            if not self.execute(command):
                return False
        return True

    def execute(self, command: str) -> bool:
        verb, _, rest = command.partition(" ")
        if verb.lower() in QUIT_COMMANDS:
            self.write("quit:\n")
            self.out.flush()
            return False
        if self.test_mode and verb.lower().startswith("!dbgauto_"):
            self._test_command(verb.lower(), rest)
            return True
        try:
            self.write(terminal(self.session.run(command).output))
        except DebuggerCommandError as exc:
            self.write(_error_text(verb, command, exc))
        except DbgautoError as exc:
            self.write(terminal(f"*** ERROR: {exc}\n"))
        except KeyboardInterrupt:
            self.write("*** Interrupted\n")
        return True

    def _test_command(self, verb: str, rest: str) -> None:
        if verb == "!dbgauto_hang":
            self.out.flush()
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                self.write("*** Break: !dbgauto_hang interrupted\n")
        elif verb == "!dbgauto_crash":
            self.write("dbgauto shell: crashing on purpose (test command)\n")
            self.out.flush()
            os._exit(CRASH_EXIT_CODE)
        elif verb == "!dbgauto_big":
            n = int(rest.strip() or "1000")
            width = len(str(n))
            self.write("".join(f"line {i:0{width}d} of {n}: dbgauto big output test\n" for i in range(1, n + 1)))
        elif verb == "!dbgauto_echo":
            self.write(codecs.decode(rest, "unicode_escape") + "\n")
        else:
            self.write(f"No export {verb[1:]} found\n")


def _error_text(verb: str, command: str, exc: DebuggerCommandError) -> str:
    """How cdb reports a rejected command (so a driver recognises it), then the native engine's reason."""
    first = f"No export {verb[1:]} found" if verb.startswith("!") else f"       ^ Syntax error in '{command}'"
    return terminal(f"{first}\n*** {exc}\n") + ("Type help for the commands the native engine answers.\n")


def run_console(session: NativeSession, stdin: TextIO, stdout: TextIO, *, initial: list[str] | None = None) -> int:
    """The prompt loop: banner already printed by the caller; returns the exit status."""
    console = _Console(session, stdout, test_mode=os.environ.get(TEST_ENV) == "1")
    if initial and not console.execute_line("; ".join(initial), echo=True):
        return 0
    interactive = stdin is sys.stdin and stdout is sys.stdout and stdin.isatty()
    if interactive:
        import readline  # noqa: F401 - line editing and history for input() on a terminal
    while True:
        try:
            if interactive:
                line = input(console.prompt) + "\n"
            else:
                stdout.write(console.prompt)
                stdout.flush()
                line = stdin.readline()
        except KeyboardInterrupt:
            stdout.write("\n")
            continue
        except EOFError:
            line = ""
        if not line:
            return 0
        if not console.execute_line(line):
            return 0


def main(argv: list[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Entry point for ``dbgauto shell`` (the click command below hands it the raw arguments)."""
    from dbgauto.engines.native import NativeEngine

    args = list(sys.argv[1:] if argv is None else argv)
    if any(a.lower() in ("-version", "/version") for a in args):
        from dbgauto.version import __version__

        (stdout or sys.stdout).write(f"dbgauto Native Debugger Version {__version__} (stand-in for cdb)\n")
        return 0
    if any(a in ("-h", "-?", "/?", "--help") for a in args):
        sys.stderr.write(USAGE)
        return 2
    opts = parse_args(args)
    out = stdout or sys.stdout
    inp = stdin or sys.stdin
    if hasattr(out, "reconfigure"):
        out.reconfigure(errors="replace")
    if opts.dump is None:
        sys.stderr.write("dbgauto shell: no dump given\n" + USAGE)
        return 2
    if not Path(opts.dump).exists():
        raise SystemExit(terminal_line(f"dbgauto shell: {opts.dump}: no such file"))
    session = NativeEngine().open(opts.dump, symbol_path=opts.symbol_path)
    try:
        out.write(session.banner_text())
        return run_console(session, inp, out, initial=opts.initial_commands)
    finally:
        out.flush()
        session.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DbgautoError as exc:
        sys.stderr.write(f"dbgauto: {exc}\n")
        sys.exit(1)


@click.command(
    "shell",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["--help"]},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """Interactive kd-style console over the native engine.

    \b
    Usage: dbgauto shell DUMP
           dbgauto shell -z DUMP [-y SYMPATH] [-lines] [-c "cmd; cmd"]   (cdb's flags, so it can stand in for cdb)
    --symbols PATH is -y PATH; without either: DBGAUTO_SYMBOL_PATH, else _NT_SYMBOL_PATH, else the local cache.
    Prompt "N: kd> ", one command per line (or several separated by ";"), "q" quits.
    """
    sys.exit(main(list(args)))
