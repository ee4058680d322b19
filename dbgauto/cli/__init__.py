"""The ``dbgauto`` command line: a thin click group whose subcommands live in their own modules.

Subcommands are imported only when invoked (``LazyGroup``), so ``dbgauto info`` does not pay for jinja2,
rich or the batch machinery at start-up. Every subcommand module exposes a click command named
``command``. Errors: a :class:`~dbgauto.errors.DbgautoError` becomes one line on stderr and exit 1;
usage errors exit 2; nothing prints a traceback unless ``DBGAUTO_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

from dbgauto.errors import DbgautoError
from dbgauto.util.textsafe import os_reason, terminal_line
from dbgauto.version import __version__

# name -> (module, one-line help shown by `dbgauto --help` without importing the module)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("dbgauto.cli.info", "Summarise dumps (dumpchk-style), or print them as JSON."),
    "convert": ("dbgauto.cli.convert", "Convert large dumps into small memory dumps (.dump /m)."),
    "report": ("dbgauto.cli.report", "Render reports (HTML, Markdown, text, JSON, CSV) for dumps or debugger logs."),
    "templates": ("dbgauto.cli.templates", "Work with the report templates (export the defaults for editing)."),
    "run": ("dbgauto.cli.run", "Run debugger commands on a dump with an engine."),
    "shell": ("dbgauto.cli.shell", "Interactive kd-style console over the native engine."),
    "doctor": ("dbgauto.cli.doctor", "List the engines, where they were found, and why one is unusable."),
    "batch": ("dbgauto.cli.batch", "Convert and report on every new dump under some folders."),
    "catalog": ("dbgauto.cli.catalog", "Look inside a batch output's SQLite catalog."),
    "schedule": ("dbgauto.cli.schedule", "Run a batch on a cron schedule (or once)."),
    "symbols": ("dbgauto.cli.symbols", "Fetch, list (symchk manifest), import and inspect symbols for dumps."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(SUBCOMMANDS) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS:
            module = importlib.import_module(SUBCOMMANDS[cmd_name][0])
            cmd: click.Command = module.command
            return cmd
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in sorted(SUBCOMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class UserFormatter(logging.Formatter):
    """Log lines as users read them: progress (INFO) plain, ``warning: ...`` / ``error: ...`` otherwise, and the
    logger's name only with -vv (debugging). Text from dumps and file names is escaped (no raw control codes)."""

    def __init__(self, *, with_names: bool = False) -> None:
        super().__init__()
        self.with_names = with_names

    def format(self, record: logging.LogRecord) -> str:
        text = terminal_line(record.getMessage())
        if record.exc_info and self.with_names:
            text += "\n" + self.formatException(record.exc_info)
        if record.levelno == logging.INFO and not self.with_names:
            return text
        prefix = record.levelname.lower()
        return f"{prefix} {record.name}: {text}" if self.with_names else f"{prefix}: {text}"


def configure_logging(verbose: int, quiet: int) -> None:
    level = logging.WARNING - 10 * verbose + 10 * quiet
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(UserFormatter(with_names=verbose >= 2))
    logging.basicConfig(level=max(logging.DEBUG, level), handlers=[handler])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dbgauto")
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log output (repeatable).")
def cli(verbose: int, quiet: int) -> None:
    """dbgauto: Windows kernel crash dumps in bulk: small-dump conversion and reports.

    Engines: native (default; pure Python, any OS), cdb/kd (pexpect) and DbgEng (pybag) on Windows.
    """
    configure_logging(verbose, quiet)


def fail(message: str, code: int = 1) -> None:
    """Print one line to stderr and exit: the only way the CLI reports an error."""
    click.echo(f"dbgauto: {message}", err=True)
    sys.exit(code)


RESUMABLE = frozenset({"batch", "schedule"})
"""Commands that keep their progress in the catalog: after Ctrl-C, running them again resumes."""


def _subcommand(argv: list[str] | None) -> str | None:
    """The subcommand named on the command line (the first word that is one), for messages only."""
    words = sys.argv[1:] if argv is None else argv
    return next((w for w in words if w in SUBCOMMANDS), None)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point. Exit status: 0 all good, 1 some inputs failed, 2 usage, 130 interrupted;
    3 only for a bug in dbgauto (reported as such)."""
    from dbgauto.util.text import safe_streams

    safe_streams()  # text from dumps never raises UnicodeEncodeError on a cp437 console or a redirect
    try:
        return cli.main(args=argv, prog_name="dbgauto", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, --version
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage errors (2) and click's own failures
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        if _subcommand(argv) in RESUMABLE:
            fail("interrupted — rerun the same command to resume", 130)
        fail("interrupted", 130)
    except DbgautoError as exc:
        if os.environ.get("DBGAUTO_DEBUG"):
            raise
        fail(terminal_line(str(exc)), 1)
    except OSError as exc:  # an output (or input) the system refused: path and reason, as for any input
        if os.environ.get("DBGAUTO_DEBUG"):
            raise
        fail(os_reason(exc), 1)
    except Exception as exc:  # last resort: one line, never a traceback, unless debugging
        if os.environ.get("DBGAUTO_DEBUG"):
            raise
        fail(
            terminal_line(f"internal error: {type(exc).__name__}: {exc}")
            + " — this is a bug in dbgauto; please report it (set DBGAUTO_DEBUG=1 for a traceback)",
            3,
        )
    return None
