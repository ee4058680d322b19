"""``dbgauto report``: reports for dumps and saved debugger logs — HTML (+ index), Markdown, text, JSON, CSV."""

from __future__ import annotations

import os
from pathlib import Path

import click

from dbgauto.cli.symopts import symbols_option
from dbgauto.engines.select import ENGINE_CHOICES, ENGINE_HELP
from dbgauto.util.textsafe import os_reason, terminal_line

__all__ = ["command"]

_FORMATS = ("html", "md", "txt", "json", "csv")
_LOG_SUFFIXES = (".log", ".txt")


def _parse_formats(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """``-f html,json`` or ``-f html -f json`` (the same spelling as ``batch``)."""
    formats = tuple(dict.fromkeys(f.strip().lower() for v in value for f in v.split(",") if f.strip()))
    bad = [f for f in formats if f not in _FORMATS]
    if bad or not formats:
        raise click.BadParameter(f"unknown format(s) {', '.join(bad) or '(none)'}; choose from {', '.join(_FORMATS)}")
    return formats


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
    "--formats",
    "formats",
    multiple=True,
    default=("html",),
    show_default=True,
    callback=_parse_formats,
    help=f"Report formats ({','.join(_FORMATS)}; repeatable or comma-separated). html also writes index.html; "
    "csv writes one report.csv for all.",
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
    type=click.Choice(ENGINE_CHOICES, case_sensitive=False),
    default="native",
    show_default=True,
    help=ENGINE_HELP,
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
    from dbgauto.debugtext import looks_like_debugger_log, read_log
    from dbgauto.engines.jobs import facts_from_dump
    from dbgauto.errors import DbgautoError
    from dbgauto.report.render import ReportRenderer

    if not inputs and not logs:
        raise click.UsageError("give at least one DUMP_OR_DIR or --from-log FILE")
    renderer = ReportRenderer(template_dirs, sandboxed=sandbox)
    collected: list[CrashFacts] = []
    failed = 0

    def fail(path: Path, message: str) -> None:
        nonlocal failed
        failed += 1
        # dbgauto's errors already name the file; do not say it twice
        line = f"dbgauto: {message}" if message.startswith(str(path)) else f"dbgauto: {path}: {message}"
        click.echo(terminal_line(line), err=True)

    dumps = _dump_files(inputs)
    for item in inputs:
        if item.is_dir() and not any(p.is_relative_to(item) for p in dumps):
            fail(item, "no kernel dump found in this folder (dumps are recognised by their signature)")
    for path in dumps:
        try:
            collected.append(facts_from_dump(path, engine=engine, symbol_path=symbol_path))
        except DbgautoError as exc:
            fail(path, str(exc).removeprefix(f"{path}: "))
        except OSError as exc:
            fail(path, os_reason(exc, path).removeprefix(f"{path}: "))
        except ImportError as exc:
            fail(path, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug in one input's analysis: say so, and go on with the others
            if os.environ.get("DBGAUTO_DEBUG"):
                raise
            fail(path, f"internal error: {type(exc).__name__}: {exc} (please report this bug)")
    log_files = _log_files(logs)
    for item in logs:
        if item.is_dir() and not any(p.is_relative_to(item) for p in log_files):
            fail(item, "no debugger log (*.log, *.txt) found in this folder")
    for path in log_files:
        try:
            text = read_log(path)
            if not looks_like_debugger_log(text):
                fail(path, "not a debugger log: no cdb/kd/WinDbg output recognised")
                continue
            collected.append(facts_from_log(text, source=path))
        except DbgautoError as exc:
            fail(path, str(exc))
        except OSError as exc:
            fail(path, os_reason(exc, path).removeprefix(f"{path}: "))

    written: list[Path] = []
    if collected:
        try:
            written = renderer.write_report_set(collected, out, formats)
        except DbgautoError as exc:
            fail(out, str(exc))
        except OSError as exc:  # the output folder: permission, read-only, disk full, not a folder
            failed += 1
            click.echo(f"dbgauto: {os_reason(exc, out)}", err=True)
    summary = f"{len(collected)} input(s), {len(written)} file(s) written to {out}"
    click.echo(summary + (f", {failed} failed" if failed else ""))
    if failed:
        raise SystemExit(1)
