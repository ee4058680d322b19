"""``dbgauto symbols fetch|manifest|import|status``: prepare symbols for dumps, on- or off-line.

``fetch DUMP...`` finds (and, when the symbol path names a server, downloads) the images every dump's driver
list names and the PDBs their RSDS records name, with one progress line per file; ``manifest DUMP... -o FILE``
writes what an air-gapped site needs in symchk's ``/om`` form; ``import DIR`` adds a carried-in symbol store or
ISF folder to dbgauto's cache; ``status`` shows the cache. The path comes from ``--symbols`` as everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dbgauto.cli.symopts import symbols_option

if TYPE_CHECKING:
    from dbgauto.symbols.server import SymbolFinder
    from dbgauto.symbols.store import SymbolKey

__all__ = ["command"]


@click.group("symbols")
def command() -> None:
    """Fetch, list, import and inspect the symbols dumps need."""


def _finder(symbol_path: str | None) -> tuple[Any, SymbolFinder]:
    from dbgauto.symbols.server import SymbolFinder
    from dbgauto.symbols.sympath import resolve_symbol_path

    r = resolve_symbol_path(symbol_path)
    return r, SymbolFinder(r.path, cache_dir=r.cache_dir, allow_network=r.path.uses_network)


def _dump_keys(path: Path, symbol_path: str | None) -> list[SymbolKey]:
    """Image keys from the dump's driver list (nt first), plus the kernel PDB when its table is identified."""
    from dbgauto.kdump.reader import KernelDump
    from dbgauto.kernel.open import read_parts
    from dbgauto.symbols.commands import image_keys
    from dbgauto.symbols.context import SymbolContext
    from dbgauto.symbols.store import pdb_key

    with KernelDump.open(path) as dump:
        parts = read_parts(dump)
        keys = image_keys((d.base_name, d.timestamp, d.size) for d in parts.drivers)
        ctx = SymbolContext.for_parts(parts, symbol_path)
        t = ctx.table
        if t is not None and t.guid and t.age is not None:
            keys.append(pdb_key(t.module, t.guid, t.age))
        close = getattr(parts.memory, "close", None)
        if close is not None:
            close()
    return keys


def _keys_of(dumps: tuple[Path, ...], symbol_path: str | None) -> tuple[list[SymbolKey], int]:
    from dbgauto.errors import DbgautoError

    keys: list[SymbolKey] = []
    failed = 0
    for d in dumps:
        try:
            keys.extend(_dump_keys(d, symbol_path))
        except DbgautoError as exc:
            failed += 1
            msg = str(exc)
            click.echo(f"dbgauto: {msg if str(d) in msg else f'{d}: {msg}'}", err=True)
    return list(dict.fromkeys(keys)), failed


@command.command("fetch")
@click.argument("dumps", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@symbols_option()
def fetch_command(dumps: tuple[Path, ...], symbol_path: str | None) -> None:
    """Find or download the images and PDBs DUMPS need (one progress line per file on stderr)."""
    from dbgauto.errors import DbgautoError
    from dbgauto.pe.debug import read_codeview
    from dbgauto.pe.image import PeImage
    from dbgauto.symbols.commands import fetch
    from dbgauto.symbols.store import pdb_key

    resolved, finder = _finder(symbol_path)
    if not resolved.path.uses_network:
        click.echo(f"dbgauto: symbol path {resolved.path.text!r} names no server: local stores only", err=True)
    keys, failed = _keys_of(dumps, symbol_path)

    def progress(done: int, total: int, key: SymbolKey, path: Path | None) -> None:
        click.echo(f"[{done}/{total}] {key} {'-> ' + str(path) if path else 'not found'}", err=True)

    results = fetch(keys, finder, progress)
    pdbs = []
    for r in results:  # each image found names its PDB in its RSDS record
        if r.path is None or r.key.name.lower().endswith(".pdb"):
            continue
        try:
            cv = read_codeview(PeImage.from_bytes(r.path.read_bytes(), name=str(r.path)))
            if cv is not None:
                pdbs.append(pdb_key(Path(cv.pdb_name.replace("\\", "/")).name, cv.guid, cv.age))
        except (DbgautoError, OSError) as exc:
            click.echo(f"warning: {r.path}: {exc}", err=True)
    pdbs = [k for k in dict.fromkeys(pdbs) if k not in keys]
    if pdbs:
        results += fetch(pdbs, finder, progress)
    found = sum(r.path is not None for r in results)
    click.echo(f"{found} of {len(results)} file(s) available; {finder.stats.downloads} downloaded")
    for e in finder.stats.errors:
        click.echo(f"warning: {e}", err=True)
    if failed:
        raise SystemExit(1)


@command.command("manifest")
@click.argument("dumps", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Manifest file.")
@symbols_option()
def manifest_command(dumps: tuple[Path, ...], output: Path, symbol_path: str | None) -> None:
    """Write what DUMPS need as a symchk /om manifest (fetch it elsewhere with symchk /im FILE)."""
    from dbgauto.symbols.commands import write_manifest

    keys, failed = _keys_of(dumps, symbol_path)
    write_manifest(keys, output)
    click.echo(f"{len(keys)} file(s) listed in {output}")
    if failed:
        raise SystemExit(1)


@command.command("import")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path), help="Cache to add to.")
def import_command(source: Path, cache_dir: Path | None) -> None:
    """Add a carried-in symbol store or ISF folder to dbgauto's cache (default: DBGAUTO_SYMBOL_CACHE or the
    user's cache directory), where every dump's identification looks."""
    from dbgauto.symbols.commands import import_dir
    from dbgauto.symbols.sympath import default_cache_dir

    cache = cache_dir or default_cache_dir()
    res = import_dir(source, cache)
    click.echo(f"imported {res.store_files} store file(s) and {res.isf_tables} ISF table(s) into {cache}")
    for s in res.skipped:
        click.echo(f"skipped: {s}", err=True)


@command.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@symbols_option()
def status_command(as_json: bool, symbol_path: str | None) -> None:
    """The symbol path in force and the cache: files, bytes, converted tables, ISF tables."""
    from dbgauto.symbols.commands import status

    resolved, _ = _finder(symbol_path)
    st: dict[str, Any] = status(resolved.cache_dir)
    st |= {"path": resolved.path.text, "source": resolved.source, "network": resolved.path.uses_network}
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    click.echo(f"symbol path: {st['path']} ({st['source']}; {'network' if st['network'] else 'no network'})")
    click.echo(
        f"cache: {st['cache_dir']}: {st['files']} file(s), {st['bytes']} bytes, "
        f"{st['tables']} converted table(s), {st['isf']} ISF table(s)"
    )
