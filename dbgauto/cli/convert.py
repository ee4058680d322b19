"""``dbgauto convert SRC... [-o OUT_DIR | -o FILE] [--engine native|cdb|dbgeng|auto] [--force]``.

Converts each large kernel dump into a small memory dump (what ``.dump /m`` writes). Output: ``-o FILE`` for one
source, ``-o DIR`` (existing, or created when several sources are given or the path ends with a separator) for
``DIR/<stem>.mini.dmp``, else ``<stem>.mini.dmp`` next to the source. Existing outputs are refused unless
``--force``; the source is never modified; every output is written to a temporary file and renamed.

Prints ``<output path>  <size> bytes`` per converted dump on stdout, warnings as ``warning: ...`` on stderr, and
one ``dbgauto: <source>: <reason>`` line per failure; exit status 1 if any failed. ``--engine native`` (default)
and ``auto`` convert natively; ``cdb`` / ``dbgeng`` ask the debugger to write it (Windows only).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from dbgauto.cli.symopts import symbols_option
from dbgauto.engines.select import ENGINE_CHOICES, ENGINE_HELP
from dbgauto.errors import DbgautoError
from dbgauto.util.textsafe import os_reason, terminal_line


def _target(output: str | None, many: bool) -> Path | None:
    """What convert_dump gets as ``out``: the file, or the folder (created) when it names one or sources are many.

    The raw option text is read: a trailing separator (``-o newdir/``) asks for a folder, and pathlib would drop it.
    Several sources need a folder: an existing one, a path ending with a separator, or a new name without a file
    suffix (``-o one.dmp`` is refused, never turned into a folder named ``one.dmp``).
    """
    if output is None:
        return None
    path = Path(output)
    wants_dir = output.endswith((os.sep, "/"))
    if path.exists() and not path.is_dir() and (many or wants_dir):
        raise click.UsageError(f"-o {output}: several sources need a folder, and this is a file")
    if many and not path.exists() and not wants_dir and path.suffix:
        raise click.UsageError(
            f"-o {output}: several sources need a folder, and this names a file; end the path with '/' for a folder"
        )
    if path.is_dir() or wants_dir or many:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.UsageError(f"-o {output}: cannot create the folder: {exc.strerror or exc}") from exc
        return path
    return path


@click.command("convert")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    default=None,
    help="Output file (one source), or folder (existing, or a path ending with '/').",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINE_CHOICES),
    default="native",
    show_default=True,
    help=ENGINE_HELP,
)
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@symbols_option()
def command(
    sources: tuple[Path, ...], output: str | None, engine: str, force: bool, symbol_path: str | None
) -> None:
    """Convert large dumps (Complete, Kernel, Automatic, Active) into small memory dumps (.dump /m)."""
    from dbgauto.engines.jobs import convert_dump

    failed = 0
    target = _target(output, len(sources) > 1)
    for src in sources:
        try:
            res = convert_dump(
                src,
                target,
                engine=engine,  # "auto" means what it means everywhere: dbgeng, else cdb, else native
                overwrite=force,
                symbol_path=symbol_path,  # the debugger engines load them; the native writer needs none
            )
        except DbgautoError as exc:
            failed += 1
            msg = str(exc)
            click.echo(terminal_line(f"dbgauto: {msg if str(src) in msg else f'{src}: {msg}'}"), err=True)
            continue
        except OSError as exc:  # the source was read: an OSError names the file it concerns (the output, usually)
            failed += 1
            click.echo(terminal_line(f"dbgauto: {os_reason(exc, target or src)}"), err=True)
            continue
        except Exception as exc:  # a bug: say so for this source, and go on with the others
            if os.environ.get("DBGAUTO_DEBUG"):
                raise
            failed += 1
            click.echo(terminal_line(f"dbgauto: {src}: internal error: {type(exc).__name__}: {exc}"), err=True)
            continue
        for w in res.warnings:
            click.echo(terminal_line(f"warning: {src}: {w}"), err=True)
        click.echo(terminal_line(f"{res.output}  {res.size} bytes"))
    if failed:
        raise SystemExit(1)
