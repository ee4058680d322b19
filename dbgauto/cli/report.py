"""``dbgauto report``: reports for dumps and saved debugger logs — HTML (+ index), Markdown, text, JSON, CSV."""

from __future__ import annotations

from pathlib import Path

import click

from dbgauto.cli.symopts import symbols_option

__all__ = ["command"]

_FORMATS = ("html", "md", "txt", "json", "csv")
_LOG_SUFFIXES = (".log", ".txt")


def _dump_files(inputs: tuple[Path, ...]) -> list[Path]:
    """Files given, plus every file under given folders whose first bytes are a kernel-dump signature."""
    from dbgauto.batch.discover import has_dump_signature  # the batch's own test: one signature rule

    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found.extend(p for p in sorted(item.rglob("*")) if p.is_file() and has_dump_signature(p))
        else:
            found.append(item)
    return found


def _log_files(inputs: tuple[Path, ...]) -> list[Path]:
    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found.extend(p for p in sorted(item.rglob("*")) if p.is_file() and p.suffix.lower() in _LOG_SUFFIXES)
        else:
            found.append(item)
    return found


@click.command("report")
@click.argument("inputs", nargs=-1, metavar="[DUMP_OR_DIR]...", type=click.Path(path_type=Path))
@click.option(
    "-o", "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder."
)
@click.option(
    "-f",
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(_FORMATS),
    default=("html",),
    show_default=True,
    help="Report format (repeatable). html also writes index.html; csv writes one report.csv for all.",
)
@click.option(
    "--templates",
    "template_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of templates overriding the defaults (repeatable; also $DBGAUTO_TEMPLATES).",
)
@click.option(
    "--engine",
    default="native",
    show_default=True,
    help="native (dbgauto's reader), or a debugger session: cdb, kd, dbgeng, auto (!analyze -v, lm, kv).",
)
@click.option(
    "--from-log",
    "logs",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Saved cdb/WinDbg console log (or a folder of *.log/*.txt) to report on (repeatable).",
)
@click.option(
    "--sandbox", is_flag=True, help="Render templates in jinja2's sandbox (templates from less-trusted people)."
)
@symbols_option()
def command(
    inputs: tuple[Path, ...],
    out: Path,
    formats: tuple[str, ...],
    template_dirs: tuple[Path, ...],
    engine: str,
    logs: tuple[Path, ...],
    sandbox: bool,
    symbol_path: str | None,
) -> None:
    """Render reports for DUMP_OR_DIR... (folders are searched for dumps by signature) and --from-log files.

    One line per failed input on stderr; exit status 1 if any input failed.
    """
    from dbgauto.analysis.facts import CrashFacts
    from dbgauto.analysis.from_log import facts_from_log
    from dbgauto.engines.jobs import facts_from_dump
    from dbgauto.errors import DbgautoError
    from dbgauto.report.render import ReportRenderer
    from dbgauto.util.text import decode_log

    if not inputs and not logs:
        raise click.UsageError("give at least one DUMP_OR_DIR or --from-log FILE")
    renderer = ReportRenderer(template_dirs, sandboxed=sandbox)
    collected: list[CrashFacts] = []
    failed = 0

    def fail(path: Path, message: str) -> None:
        nonlocal failed
        failed += 1
        # dbgauto's errors already name the file; do not say it twice
        click.echo(f"dbgauto: {message}" if message.startswith(str(path)) else f"dbgauto: {path}: {message}", err=True)

    for path in _dump_files(inputs):
        try:
            collected.append(facts_from_dump(path, engine=engine, symbol_path=symbol_path))
        except DbgautoError as exc:
            fail(path, str(exc).removeprefix(f"{path}: "))
        except (OSError, ImportError) as exc:
            fail(path, f"{type(exc).__name__}: {exc}")
    for path in _log_files(logs):
        try:
            text = decode_log(path.read_bytes())  # UTF-16 from .logopen /u, UTF-8, with or without a BOM
            collected.append(facts_from_log(text, source=path))
        except (DbgautoError, OSError) as exc:
            fail(path, str(exc))

    written: list[Path] = []
    if collected:
        try:
            written = renderer.write_report_set(collected, out, formats)
        except DbgautoError as exc:
            fail(out, str(exc))
    summary = f"{len(collected)} input(s), {len(written)} file(s) written to {out}"
    click.echo(summary + (f", {failed} failed" if failed else ""))
    if failed:
        raise SystemExit(1)
