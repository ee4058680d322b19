"""``dbgauto templates``: copy the default report templates out for editing, or show where they live."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["command"]


@click.group("templates")
def command() -> None:
    """Work with the report templates (jinja2). Edit a copy and pass it with `dbgauto report --templates DIR`."""


@command.command("export")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that already exist in DEST.")
def export(dest: Path, force: bool) -> None:
    """Copy the default templates into DEST."""
    from dbgauto.report.render import export_templates

    for path in export_templates(dest, overwrite=force):
        click.echo(str(path))


@command.command("path")
def path() -> None:
    """Print the folder holding the default templates."""
    from dbgauto.report.render import packaged_templates_dir

    click.echo(str(packaged_templates_dir()))
