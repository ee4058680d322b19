"""``dbgauto shell DUMP``: the kd-style console (see :mod:`dbgauto.shell`); accepts and ignores cdb's flags."""

from __future__ import annotations

import sys

import click

__all__ = ["command"]


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
    Prompt "N: kd> ", one command per line (or several separated by ";"), "q" quits.
    """
    from dbgauto.shell import main

    sys.exit(main(list(args)))
