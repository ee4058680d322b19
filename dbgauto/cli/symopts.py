"""The ``--symbols PATH`` option every command that analyses dumps shares (one help text, one resolution rule)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["SYMBOLS_HELP", "symbols_option"]

F = TypeVar("F", bound=Callable[..., Any])

SYMBOLS_HELP = (
    "Symbol path in the debugger's syntax (srv*DIR*URL; cache*DIR; DIR; ';'-separated). Default: "
    "DBGAUTO_SYMBOL_PATH, else _NT_SYMBOL_PATH, else dbgauto's local cache; the network is used only when the "
    "path names a server."
)


def symbols_option(*extra_names: str) -> Callable[[F], F]:
    """``--symbols`` (plus ``extra_names``, e.g. ``-y``) into the ``symbol_path`` parameter."""
    return click.option("--symbols", *extra_names, "symbol_path", metavar="PATH", default=None, help=SYMBOLS_HELP)
