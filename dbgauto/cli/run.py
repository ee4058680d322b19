"""``dbgauto run DUMP -c "cmd; cmd"``: run debugger commands with an engine; print a log or JSON, or save it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from dbgauto.cli.symopts import symbols_option
from dbgauto.engines.base import DEFAULT_COMMAND_TIMEOUT, split_commands
from dbgauto.engines.select import ENGINE_CHOICES, ENGINE_HELP
from dbgauto.util.textsafe import terminal, terminal_line

__all__ = ["command"]


@click.command("run")
@click.argument("dump", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-c", "--commands", "commands", multiple=True, help='Commands, ";"-separated (repeatable; default: !analyze -v).'
)
@click.option(
    "--engine",
    type=click.Choice(ENGINE_CHOICES, case_sensitive=False),
    default="auto",
    show_default=True,
    help=ENGINE_HELP,
)
@click.option("--debugger-path", envvar="DBGAUTO_DEBUGGER_PATH", help="cdb/kd to use (a path or a command line).")
@symbols_option("--symbol-path", "-y")
@click.option("--timeout", type=float, default=DEFAULT_COMMAND_TIMEOUT, show_default=True, help="Seconds per command.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: engine, banner and one result per command.")
@click.option("--no-banner", is_flag=True, help="Leave the debugger's banner out of the text log.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Save to this file instead.")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
def command(
    dump: Path,
    commands: tuple[str, ...],
    engine: str,
    debugger_path: str | None,
    symbol_path: str | None,
    timeout: float,
    as_json: bool,
    no_banner: bool,
    output: Path | None,
    force: bool,
) -> None:
    """Run debugger commands on DUMP and print them as a console log (prompt, command, output) or as JSON.

    The engine used and why it was chosen is printed on stderr. Exit status 1 when a command failed.
    """
    from dbgauto.engines.select import select_engine
    from dbgauto.errors import DebuggerCommandError, EngineError

    chosen, why = select_engine(engine, debugger_path=debugger_path)
    click.echo(terminal_line(f"dbgauto: engine {why}"), err=True)
    items = [c for group in commands for c in split_commands(group)] or ["!analyze -v"]
    results: list[dict[str, Any]] = []
    log: list[str] = []
    failed = False
    from dbgauto.engines.jobs import debugger_symbol_path
    from dbgauto.engines.native import NativeEngine

    if not isinstance(chosen, NativeEngine):
        symbol_path = debugger_symbol_path(symbol_path)
    with chosen.open(dump, symbol_path=symbol_path) as session:
        banner = session.banner
        if banner is not None and banner.raw and not no_banner:
            log.append(banner.raw.rstrip(" ").removesuffix(session.prompt).rstrip("\n") + "\n")
        for cmd in items:
            log.append(f"{session.prompt}{cmd}\n")
            try:
                res = session.run(cmd, timeout=timeout)
            except DebuggerCommandError as exc:
                failed = True
                results.append({"command": cmd, "error": {"code": exc.code, "message": str(exc)}, "output": exc.output})
                log.append(exc.output or f"*** {exc}\n")
                continue
            except EngineError as exc:  # timeout or crash: the session is gone
                failed = True
                results.append({"command": cmd, "error": {"code": exc.code, "message": str(exc)}})
                log.append(f"*** {exc}\n")
                break
            results.append(res.to_dict())
            log.append(res.output)
            if session.closed:  # q
                break
        doc = {
            "dump": str(dump),
            "engine": session.engine_name,
            "engine_reason": why,
            "debugger_version": session.debugger_version,
            "banner": banner.to_dict() if banner is not None else None,
            "results": results,
        }
    text = json.dumps(doc, indent=2) + "\n" if as_json else "".join(log)
    if output is not None:
        from dbgauto.util.atomic import atomic_write_text

        atomic_write_text(output, text, overwrite=force)
        click.echo(terminal_line(f"dbgauto: wrote {output}"), err=True)
    else:
        sys.stdout.write(text if as_json else terminal(text))  # JSON escapes controls itself
    if failed:
        sys.exit(1)
