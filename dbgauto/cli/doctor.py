"""``dbgauto doctor``: which engines can run here, where each debugger was looked for and found, and why not."""

from __future__ import annotations

import json
import platform
import sys
from typing import Any

import click

from dbgauto.cli.symopts import symbols_option

__all__ = ["command"]


def _symbols(argument: str | None) -> dict[str, Any]:
    """The symbol path in force, where it came from, and whether it may use the network."""
    from dbgauto.symbols.sympath import resolve_symbol_path

    r = resolve_symbol_path(argument)
    return {
        "path": r.path.text,
        "source": r.source,
        "network": r.path.uses_network,
        "servers": r.path.urls,
        "cache_dir": str(r.cache_dir),
        "warnings": list(r.path.warnings),
    }


def _report(debugger_path: str | None, probe: bool, symbol_path: str | None = None) -> dict[str, Any]:
    from dbgauto.engines.locate import candidates, probe_version
    from dbgauto.engines.select import all_engines, select_engine

    engines = []
    for engine, avail in all_engines(debugger_path=debugger_path):
        version = avail.version
        if probe and avail.ok and version is None and engine.name in ("cdb", "kd") and avail.location:
            from dbgauto.engines.locate import split_command_line

            version = probe_version(split_command_line(avail.location))
        engines.append(
            {
                "name": engine.name,
                "usable": avail.ok,
                "reason": avail.reason,
                "version": version,
                "location": avail.location,
            }
        )
    looked = {
        kind: [
            {"source": c.source, "path": c.display, "exists": c.exists} for c in candidates(debugger_path, kind=kind)
        ]
        for kind in ("cdb", "kd")
    }
    chosen, why = select_engine("auto", debugger_path=debugger_path)
    return {
        "platform": f"{platform.system()} {platform.release()} ({sys.platform}), Python {platform.python_version()}",
        "engines": engines,
        "auto": {"engine": chosen.name, "why": why},
        "looked_for": looked,
        "symbols": _symbols(symbol_path),
        "windows_engines_note": None
        if sys.platform == "win32"
        else "Windows engines (cdb/kd, DbgEng) are unavailable: this is not Windows; the native engine answers.",
    }


@click.command("doctor")
@click.option("--debugger-path", envvar="DBGAUTO_DEBUGGER_PATH", help="Also check this cdb/kd (path or command line).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-probe", is_flag=True, help="Do not run the debuggers found to ask their version.")
@symbols_option()
def command(debugger_path: str | None, as_json: bool, no_probe: bool, symbol_path: str | None) -> None:
    """List the engines, where each debugger was looked for and found, versions, and why one is unusable;
    the symbol path in force, its source and whether it may use the network."""
    rep = _report(debugger_path, probe=not no_probe, symbol_path=symbol_path)
    if as_json:
        click.echo(json.dumps(rep, indent=2))
        return
    click.echo(f"platform: {rep['platform']}")
    if rep["windows_engines_note"]:
        click.echo(rep["windows_engines_note"])
    click.echo("engines:")
    for e in rep["engines"]:
        state = "usable  " if e["usable"] else "unusable"
        version = f" [version {e['version']}]" if e["version"] else ""
        click.echo(f"  {e['name']:<7} {state} {e['reason']}{version}")
    click.echo(f"--engine auto picks: {rep['auto']['engine']} ({rep['auto']['why']})")
    for kind, rows in rep["looked_for"].items():
        click.echo(f"looked for {kind}:")
        for r in rows:
            click.echo(f"  [{'found' if r['exists'] else 'absent'}] {r['source']}: {r['path']}")
    sym = rep["symbols"]
    source = {"argument": "--symbols", "default": "default: dbgauto's cache"}.get(sym["source"], sym["source"])
    net = f"may use the network ({', '.join(sym['servers'])})" if sym["network"] else "no network"
    click.echo(f"symbol path: {sym['path']}")
    click.echo(f"  source: {source}; {net}; cache: {sym['cache_dir']}")
    for w in sym["warnings"]:
        click.echo(f"  warning: {w}")
