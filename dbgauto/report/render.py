"""Render CrashFacts through jinja2 templates the user can override: HTML, Markdown, text; plus JSON and CSV.

One :class:`jinja2.Environment` per renderer. Its loader looks in, in order: the ``template_dirs`` given
(``--templates``), the folders in ``$DBGAUTO_TEMPLATES`` (``os.pathsep``-separated), then the packaged
defaults. The defaults are also reachable as ``default/<name>``, so a user's ``report.html`` can say
``{% extends "default/report.html" %}`` and override a single ``{% block %}``.

Safety: HTML templates are autoescaped (never ``|safe`` on dump text); every printed value first goes
through :func:`_finalize`, which makes control characters and lone surrogates visible as ``\\xNN`` /
``\\udcNN``; undefined names fail (StrictUndefined); templates reference nothing on the network, and the
HTML carries a Content-Security-Policy whose only allowed script is the index's own (by hash).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

import jinja2
import jinja2.sandbox
from markupsafe import Markup

import dbgauto
from dbgauto.analysis.facts import CrashFacts
from dbgauto.errors import TemplateError
from dbgauto.report import charts
from dbgauto.report.csvout import csv_text, write_csv
from dbgauto.report.names import inside, report_stem
from dbgauto.report.outputs import OutputSet
from dbgauto.report.rows import debugger_rows, driver_rows, when_cell
from dbgauto.report.textsafe import visible
from dbgauto.util.atomic import atomic_write_bytes
from dbgauto.util.usercache import private_dir, user_cache_root
from dbgauto.vocab.fmt import addr_text, hex_text, uptime_text

__all__ = [
    "FORMATS",
    "TEMPLATE_FORMATS",
    "ReportRenderer",
    "json_text",
    "packaged_templates_dir",
    "render",
    "render_index",
    "write_csv",
    "write_json",
]

log = logging.getLogger(__name__)

TEMPLATE_FORMATS: Final = {"html": "report.html", "md": "report.md", "txt": "report.txt"}
FORMATS: Final = ("html", "md", "txt", "json", "csv")
ENV_VAR: Final = "DBGAUTO_TEMPLATES"
INDEX_SCRIPT: Final = "index.js"

_MD_SPECIAL: Final = re.compile(r"([\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


Links = Mapping[int, str] | Sequence[str | None] | Callable[[CrashFacts], str | None] | None


def packaged_templates_dir() -> Path:
    """The default templates: ``dbgauto/templates`` in a wheel, ``<repo>/templates`` in a source checkout."""
    packaged = Path(str(resources.files("dbgauto"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(dbgauto.__file__).resolve().parent.parent / "templates"


def _plain(value: Any) -> str:
    """A value as a reader expects it: no Python reprs (``{'code': ...}``, ``[...]``, ``None``, ``True``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_plain(v) for v in value)
    return str(value)


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` output: None prints as empty, containers as plain text; control characters, CR, bidi
    overrides and lone surrogates become visible escapes."""
    if value is None:
        return ""
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        value = _plain(value)
    if isinstance(value, str) and not isinstance(value, Markup) and not value.isprintable():
        return visible(value)
    return value


def _md(value: Any) -> str:
    """Escape Markdown punctuation and HTML specials so dump text stays literal in any Markdown viewer."""
    text = visible("" if value is None else str(value))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _hex(value: int | None, width: int = 0) -> Markup:
    """Hex digits only, so the result is marked safe (skips escaping in the large tables)."""
    return Markup(hex_text(value, width))


def _addr(value: int | None, is_64bit: bool | None = True) -> Markup:
    """An address as WinDbg prints it (safe markup: hex digits and a backtick only)."""
    return Markup(addr_text(value, is_64bit))


def _unixtime(value: int | None) -> str:
    """A PE TimeDateStamp as a UTC date (link time; some builds store a hash instead, so it can look odd)."""
    if value is None:
        return ""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d")


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return uptime_text(round(seconds * 1000) * 10_000, zero_days=False)  # rounded to the ms (…19.860, not .859)


def json_text(facts: CrashFacts | Mapping[str, Any]) -> str:
    """The JSON document for one dump: compact (the C encoder; ``indent`` is 4x slower), ASCII-only so that
    lone surrogates from bad UTF-16 survive as escapes. ``facts`` may be the dict ``to_dict()`` already gave."""
    doc = facts.to_dict() if isinstance(facts, CrashFacts) else facts
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n"


def write_json(facts: CrashFacts, path: os.PathLike[str] | str) -> Path:
    return atomic_write_bytes(path, json_text(facts).encode("ascii"), overwrite=True)


TEMPLATE_CACHE_ENV: Final = "DBGAUTO_TEMPLATE_CACHE"  # "0": compile templates in every process, cache nothing


def _bytecode_cache(sandboxed: bool) -> jinja2.BytecodeCache | None:
    """Compiled templates kept in the user's cache folder (``templates/``), so a process loads a template instead
    of compiling it (about 40 ms per template here: every batch worker and every ``dbgauto report`` paid it).
    Jinja keys each entry by the template's name and file and checks its source's checksum, so an edited
    template is compiled again. The code is executed when loaded, so only a folder private to this user is
    used (:func:`dbgauto.util.usercache.private_dir`); one folder per Jinja version and environment kind."""
    if os.environ.get(TEMPLATE_CACHE_ENV, "1") == "0":
        return None
    kind = "sandboxed" if sandboxed else "plain"
    folder = private_dir(user_cache_root() / "templates" / f"jinja-{jinja2.__version__}-{kind}")
    return jinja2.FileSystemBytecodeCache(str(folder)) if folder is not None else None


class ReportRenderer:
    """Renders reports for one dump (:meth:`write_dump_report`) or a set (:meth:`write_index`)."""

    def __init__(self, template_dirs: Sequence[os.PathLike[str] | str] = (), *, sandboxed: bool = False) -> None:
        user_dirs = [Path(d) for d in template_dirs]
        user_dirs += [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
        for d in user_dirs:
            if not d.is_dir():
                raise TemplateError(str(d), "template folder does not exist")
        self.template_dirs = user_dirs
        self.default_dir = packaged_templates_dir()
        default = jinja2.FileSystemLoader(str(self.default_dir))
        loader = jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader([str(d) for d in user_dirs]),
                default,
                jinja2.PrefixLoader({"default": default}),
            ]
        )
        env_cls = jinja2.sandbox.ImmutableSandboxedEnvironment if sandboxed else jinja2.Environment
        self.env = env_cls(
            loader=loader,
            autoescape=jinja2.select_autoescape(("html", "htm", "xml", "svg"), default_for_string=True),
            undefined=jinja2.StrictUndefined,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
            bytecode_cache=_bytecode_cache(sandboxed),
        )
        self.env.filters.update(
            hex=_hex, addr=_addr, when=_when, stamp=when_cell, unixtime=_unixtime, duration=_duration, md=_md
        )
        self.env.globals.update(
            dbgauto_version=dbgauto.__version__, driver_rows=driver_rows, debugger_rows=debugger_rows
        )

    # ------------------------------------------------------------------ rendering

    def render(self, template: str, **context: Any) -> str:
        """Render one template; any jinja2 problem becomes :class:`TemplateError` naming template and line."""
        try:
            return self.env.get_template(template).render(**context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(exc.filename or exc.name or template, exc.message or str(exc), line=exc.lineno) from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(exc.name or template, "template not found") from exc
        except (jinja2.TemplateError, TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            where, line = self._template_frame(exc, template)
            raise TemplateError(where, f"{type(exc).__name__}: {exc}", line=line) from exc

    def _template_frame(self, exc: BaseException, fallback: str) -> tuple[str, int | None]:
        """The innermost traceback frame that is a template (jinja2 rewrites frames to template lines)."""
        roots = [str(d.resolve()) for d in (*self.template_dirs, self.default_dir)]
        found: tuple[str, int | None] = (fallback, None)
        for frame in traceback.extract_tb(exc.__traceback__):
            filename = str(Path(frame.filename).resolve()) if frame.filename else ""
            if any(filename.startswith(root) for root in roots):
                found = (frame.filename, frame.lineno)
        return found

    def render_dump(
        self,
        facts: CrashFacts,
        fmt: str,
        *,
        show_scan_frames: bool = False,
        nav: Sequence[tuple[str, str]] = (),
    ) -> str:
        """One dump's report as text (``html``, ``md``, ``txt`` through templates; ``json`` directly). Stack
        frames found only by scanning are folded away unless ``show_scan_frames``.

        ``nav``: (label, relative href) links shown at the top of the HTML report (the index, the same dump's
        JSON and small dump); hrefs that are not safe relative links are dropped."""
        if fmt == "json":
            return json_text(facts)
        if fmt not in TEMPLATE_FORMATS:
            raise ValueError(f"unknown report format {fmt!r} (choose from {', '.join(FORMATS)})")
        links = [(label, safe) for label, href in nav if (safe := _safe_href(href))]
        return self.render(
            TEMPLATE_FORMATS[fmt],
            facts=facts,
            culprit_driver=facts.culprit_driver,
            show_scan_frames=show_scan_frames,
            nav=links,
        )

    def dump_report_file(
        self, facts: CrashFacts, fmt: str, *, name: str | None = None, facts_dict: Mapping[str, Any] | None = None
    ) -> tuple[str, bytes]:
        """(file name, content) of one dump's report, as :meth:`write_dump_report` writes it; ``facts_dict``:
        ``facts.to_dict()`` when the caller has it already (the JSON report is then not encoded twice)."""
        text = json_text(facts_dict) if fmt == "json" and facts_dict is not None else self.render_dump(facts, fmt)
        return f"{name or report_stem(facts)}.{fmt}", text.encode("utf-8", "backslashreplace")

    def write_dump_report(
        self, facts: CrashFacts, out_dir: os.PathLike[str] | str, fmt: str, *, name: str | None = None
    ) -> Path:
        """Write ``<safe name>-<id>.<fmt>`` inside ``out_dir`` (atomically) and return its path."""
        folder = Path(out_dir)
        file_name, data = self.dump_report_file(facts, fmt, name=name)
        target = inside(folder, file_name)
        folder.mkdir(parents=True, exist_ok=True)
        return atomic_write_bytes(target, data, overwrite=True)

    def render_index(
        self,
        facts_list: Iterable[CrashFacts],
        *,
        report_links: Links = None,
        links: Links = None,
        title: str = "dbgauto crash reports",
    ) -> str:
        """The index page as text (see :meth:`write_index`)."""
        items = list(facts_list)
        chosen = report_links if report_links is not None else links
        rows = [{"facts": f, "href": _safe_href(_link_for(chosen, i, f))} for i, f in enumerate(items)]
        unit, per_day = charts.crashes_per_day(items)
        chart_set = {
            "per_day": charts.column_chart(per_day, title=f"Crashes per {unit}"),
            "per_day_unit": unit,
            "bugchecks": charts.bar_chart(charts.top_bugchecks(items), title="Top bug checks"),
            "culprits": charts.bar_chart(charts.top_culprits(items), title="Top culprit drivers"),
            "builds": charts.bar_chart(charts.crashes_per_build(items), title="Crashes per OS build"),
        }
        script = self.render(INDEX_SCRIPT)
        script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
        return self.render(
            "index.html",
            rows=rows,
            charts=chart_set,
            title=title,
            script=Markup(script),
            script_hash=script_hash,
            generated=datetime.now(UTC),
        )

    def write_index(
        self,
        facts_list: Iterable[CrashFacts],
        out_dir: os.PathLike[str] | str,
        *,
        report_links: Links = None,
        links: Links = None,
        title: str = "dbgauto crash reports",
        name: str = "index.html",
    ) -> Path:
        """Write ``index.html``: a sortable, filterable table of every dump, four inline-SVG charts, links.

        ``report_links`` (alias ``links``) gives each dump's report href, relative to ``out_dir``: a sequence
        parallel to ``facts_list``, a mapping by position, or a function; by default the name
        :meth:`write_dump_report` uses for HTML. Hrefs are escaped, and ``javascript:`` hrefs are dropped.
        """
        text = self.render_index(facts_list, report_links=report_links, links=links, title=title)
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return atomic_write_bytes(inside(folder, name), text.encode("utf-8", "backslashreplace"), overwrite=True)

    def write_report_set(
        self,
        facts_list: Sequence[CrashFacts],
        out_dir: os.PathLike[str] | str,
        formats: Sequence[str] = ("html", "json"),
        *,
        title: str = "dbgauto crash reports",
    ) -> list[Path]:
        """Every dump's reports in ``formats`` (+ ``csv``: one report.csv), and index.html when html is asked.

        Files are published together through :class:`~dbgauto.report.outputs.OutputSet` (temp files, one
        batched fsync pass, renames): the same all-or-old guarantee as atomic_write, without a disk wait
        per file. A template error stops the set before anything is renamed.
        """
        written: list[Path] = []
        with OutputSet(out_dir) as out:
            links: list[str | None] = []
            for facts in facts_list:
                stem = report_stem(facts)
                href = None
                nav = [("Index of all dumps", "index.html")] if "html" in formats else []
                nav += [
                    (label, f"{stem}.{fmt}")
                    for fmt, label in (("json", "JSON"), ("md", "Markdown"), ("txt", "Text"))
                    if fmt in formats
                ]
                for fmt in formats:
                    if fmt == "csv":
                        continue
                    text = self.render_dump(facts, fmt, nav=nav if fmt == "html" else ())
                    written.append(out.add(f"{stem}.{fmt}", text.encode("utf-8", "backslashreplace")))
                    if fmt == "html":
                        href = f"{stem}.html"
                links.append(href)
            if "csv" in formats:
                data = "\ufeff" + csv_text(facts_list)
                written.append(out.add("report.csv", data.encode("utf-8", "backslashreplace")))
            if "html" in formats:
                index = self.render_index(facts_list, report_links=links, title=title)
                written.append(out.add("index.html", index.encode("utf-8", "backslashreplace")))
        return written


def render(
    facts: CrashFacts, fmt: str, out: os.PathLike[str] | str, *, templates: Sequence[os.PathLike[str] | str] = ()
) -> Path:
    """Shorthand (docs/architecture.md): write one dump's report in ``fmt`` into folder ``out``."""
    if fmt == "csv":
        return write_csv([facts], inside(Path(out), f"{report_stem(facts)}.csv"))
    return ReportRenderer(templates).write_dump_report(facts, out, fmt)


def render_index(
    facts_list: Iterable[CrashFacts],
    out: os.PathLike[str] | str,
    *,
    templates: Sequence[os.PathLike[str] | str] = (),
    links: Links = None,
) -> Path:
    """Shorthand (docs/architecture.md): write ``index.html`` for a set into folder ``out``."""
    return ReportRenderer(templates).write_index(facts_list, out, report_links=links)


def export_templates(dest: os.PathLike[str] | str, *, overwrite: bool = False) -> list[Path]:
    """Copy every packaged template file into ``dest``; existing files are kept unless ``overwrite``."""
    from dbgauto.util.atomic import atomic_write

    src = packaged_templates_dir()
    out = Path(dest)
    written = []
    for path in sorted(src.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            target = out / path.relative_to(src)
            with atomic_write(target, overwrite=overwrite) as fh:
                fh.write(path.read_bytes())
            written.append(target)
    return written


def _link_for(
    links: Links,
    index: int,
    facts: CrashFacts,
) -> str | None:
    if links is None:
        return f"{report_stem(facts)}.html"
    if callable(links):
        return links(facts)
    if isinstance(links, Mapping):
        return links.get(index)
    return links[index] if index < len(links) else None


def _safe_href(href: str | None) -> str | None:
    if not href:
        return None
    scheme = href.split(":", 1)[0].strip().lower() if ":" in href.split("/", 1)[0] else ""
    return None if scheme and scheme not in ("http", "https", "file") else href
