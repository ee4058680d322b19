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
from dbgauto.errors import DbgautoError

ENGINE_CHOICES = ("native", "cdb", "dbgeng", "auto")


def _target(output: Path | None, many: bool) -> Path | None:
    """What convert_dump gets as ``out``: the file, or the folder (created) when it names one or sources are many."""
    if output is None:
        return None
    if output.is_dir() or many or str(output).endswith((os.sep, "/")):
        if output.exists() and not output.is_dir():
            raise click.UsageError(f"-o {output}: several sources need a folder, and this is a file")
        output.mkdir(parents=True, exist_ok=True)
        return output
    return output


@click.command("convert")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), default=None, help="Output file (one source) or folder."
)
@click.option(
    "--engine",
    type=click.Choice(ENGINE_CHOICES),
    default="native",
    show_default=True,
    help="Who writes the small dump.",
)
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@symbols_option()
def command(sources: tuple[Path, ...], output: Path | None, engine: str, force: bool, symbol_path: str | None) -> None:
    """Convert large dumps (Complete, Kernel, Automatic, Active) into small memory dumps (.dump /m)."""
    from dbgauto.engines.jobs import convert_dump

    failed = 0
    many = len(sources) > 1
    for src in sources:
        try:
            res = convert_dump(
                src,
                _target(output, many),
                engine=engine,  # "auto" means what it means everywhere: dbgeng, else cdb, else native
                overwrite=force,
                symbol_path=symbol_path,  # the debugger engines load them; the native writer needs none
            )
        except DbgautoError as exc:
            failed += 1
            msg = str(exc)
            click.echo(f"dbgauto: {msg if str(src) in msg else f'{src}: {msg}'}", err=True)
            continue
        except OSError as exc:
            failed += 1
            click.echo(f"dbgauto: {src}: {exc.strerror or exc}", err=True)
            continue
        for w in res.warnings:
            click.echo(f"warning: {src}: {w}", err=True)
        click.echo(f"{res.output}  {res.size} bytes")
    if failed:
        raise SystemExit(1)
