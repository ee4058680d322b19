"""Rendering through the jinja2 environment: formats, user overrides, errors, and no network references."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dbgauto.analysis.facts import CrashFacts
from dbgauto.errors import OutputExistsError, TemplateError
from dbgauto.report.names import report_stem
from dbgauto.report.render import ReportRenderer, export_templates, packaged_templates_dir, write_json


def test_every_format_is_written_inside_the_folder(tmp_path: Path, facts: CrashFacts, html_check: Callable) -> None:
    r = ReportRenderer()
    paths = {fmt: r.write_dump_report(facts, tmp_path, fmt) for fmt in ("html", "md", "txt", "json")}
    assert {p.parent for p in paths.values()} == {tmp_path}
    assert {p.name for p in paths.values()} == {f"{report_stem(facts)}.{ext}" for ext in ("html", "md", "txt", "json")}
    page = html_check(paths["html"].read_text(encoding="utf-8"))
    text = page.visible
    for needle in (
        "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M",
        "0x1000007E",
        "vendor.sys",
        "19041",
        "a warning",
        "old.sys",
    ):
        assert needle in text
    assert page.scripts == []
    md = paths["md"].read_text(encoding="utf-8")
    assert md.startswith("# SYSTEM\\_THREAD") or md.startswith("# SYSTEM_THREAD")
    assert "vendor.sys" in md
    assert "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M (0x1000007E)" in paths["txt"].read_text(encoding="utf-8")
    assert CrashFacts.from_dict(json.loads(paths["json"].read_text(encoding="ascii"))) == facts


def test_culprit_row_is_highlighted(tmp_path: Path, facts: CrashFacts) -> None:
    page = ReportRenderer().write_dump_report(facts, tmp_path, "html").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith('<tr class="culprit"')]
    assert len(rows) == 1
    assert "vendor.sys" in rows[0]


def test_no_network_reference_and_a_strict_csp(tmp_path: Path, facts: CrashFacts, html_check: Callable) -> None:
    r = ReportRenderer()
    for path in (r.write_dump_report(facts, tmp_path, "html"), r.write_index([facts], tmp_path)):
        page = path.read_text(encoding="utf-8")
        parsed = html_check(page)
        assert "http://" not in page
        assert "https://" not in page
        for tag, attr, value in parsed.attrs:
            assert attr not in ("src", "srcset", "action"), (tag, attr, value)
            if attr == "href":
                assert value is not None
                assert "//" not in value
                assert ":" not in value
        csp = [v for t, a, v in parsed.attrs if t == "meta" and v and v.startswith("default-src 'none'")]
        assert len(csp) == 1


def test_index_script_is_allowed_by_hash_only(tmp_path: Path, facts: CrashFacts, html_check: Callable) -> None:
    page = ReportRenderer().write_index([facts, facts], tmp_path).read_text(encoding="utf-8")
    parsed = html_check(page)
    assert len(parsed.scripts) == 1
    script = parsed.scripts[0]
    assert script == (packaged_templates_dir() / "index.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page
    assert page.count("<svg") == 4


def test_index_links_default_to_report_names_and_accept_explicit_ones(tmp_path: Path, make_facts: Callable) -> None:
    a, b = make_facts(1), make_facts(2)
    r = ReportRenderer()
    page = r.write_index([a, b], tmp_path).read_text(encoding="utf-8")
    assert f'href="{report_stem(a)}.html"' in page
    page = r.write_index([a, b], tmp_path, report_links=["one.html", "javascript:alert(1)"]).read_text(encoding="utf-8")
    assert 'href="one.html"' in page
    assert "javascript:" not in page


def test_user_block_override_changes_only_that_block(tmp_path: Path, facts: CrashFacts) -> None:
    user = tmp_path / "tpl"
    user.mkdir()
    (user / "report.html").write_text(
        '{% extends "default/report.html" %}\n{% block warnings %}<p id="site">SITE WARNINGS</p>{% endblock %}\n',
        encoding="utf-8",
    )
    default = ReportRenderer().render_dump(facts, "html")
    custom = ReportRenderer([user]).render_dump(facts, "html")
    assert custom != default
    start = 0
    while default[start] == custom[start]:
        start += 1
    start = default.rfind("<", 0, start + 1)  # back to the tag both versions start differing in
    end = 0
    while default[len(default) - 1 - end] == custom[len(custom) - 1 - end]:
        end += 1
    removed = default[start : len(default) - end]
    added = custom[start : len(custom) - end]
    assert '<h2 id="warnings">Warnings</h2>' in removed
    assert "a warning" in removed
    assert "SITE WARNINGS" in added
    assert "<h2" not in added
    assert "Loaded drivers" not in removed
    assert '<h2 id="stack">' not in removed


def test_user_file_replaces_default_and_env_var_is_searched(
    tmp_path: Path, facts: CrashFacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "env"
    user.mkdir()
    (user / "report.txt").write_text("CUSTOM {{ facts.bugcheck.code_text }}\n", encoding="utf-8")
    monkeypatch.setenv("DBGAUTO_TEMPLATES", str(user))
    assert ReportRenderer().render_dump(facts, "txt") == "CUSTOM 0x1000007E\n"
    monkeypatch.delenv("DBGAUTO_TEMPLATES")
    assert ReportRenderer().render_dump(facts, "txt").startswith("SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M")


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ("line one\n{% if facts.bugcheck %}\nno endif\n", 3, "endif"),
        ("ok\n{{ facts.bugcheck.code_text | nosuchfilter }}\n", 2, "nosuchfilter"),
        ("ok\nok\n{{ facts.no_such_field }}\n", 3, "no_such_field"),
        ("{% for x in facts.drivers %}\n{{ x.base.nope }}\n{% endfor %}\n", 2, "nope"),
    ],
)
def test_template_mistakes_name_template_and_line(
    tmp_path: Path, facts: CrashFacts, body: str, line: int, needle: str
) -> None:
    user = tmp_path / "tpl"
    user.mkdir()
    (user / "report.txt").write_text(body, encoding="utf-8")
    with pytest.raises(TemplateError) as err:
        ReportRenderer([user]).render_dump(facts, "txt")
    assert err.value.line == line
    assert "report.txt" in err.value.template
    assert f"report.txt:{line}" in str(err.value)
    assert needle in str(err.value)


def test_missing_template_folder_is_a_template_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError):
        ReportRenderer([tmp_path / "absent"])


def test_sandbox_blocks_attribute_escapes(tmp_path: Path, facts: CrashFacts) -> None:
    user = tmp_path / "tpl"
    user.mkdir()
    (user / "report.txt").write_text("{{ facts.__class__.__init__.__globals__ }}\n", encoding="utf-8")
    with pytest.raises(TemplateError) as err:
        ReportRenderer([user], sandboxed=True).render_dump(facts, "txt")
    assert "unsafe" in str(err.value).lower() or "security" in str(err.value).lower()


def test_unknown_format_is_rejected(facts: CrashFacts) -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        ReportRenderer().render_dump(facts, "pdf")


def test_export_copies_defaults_and_keeps_existing(tmp_path: Path) -> None:
    written = export_templates(tmp_path / "out")
    names = {p.name for p in written}
    assert {"base.html", "report.html", "index.html", "report.md", "report.txt", "index.js"} <= names
    assert (tmp_path / "out" / "report.html").read_bytes() == (packaged_templates_dir() / "report.html").read_bytes()
    with pytest.raises(OutputExistsError):
        export_templates(tmp_path / "out")
    assert export_templates(tmp_path / "out", overwrite=True)


def test_exported_templates_render_identically(tmp_path: Path, facts: CrashFacts) -> None:
    export_templates(tmp_path / "copy")
    assert ReportRenderer([tmp_path / "copy"]).render_dump(facts, "html") == ReportRenderer().render_dump(facts, "html")


def test_write_json_is_ascii_and_round_trips(tmp_path: Path, facts: CrashFacts) -> None:
    path = write_json(facts, tmp_path / "x.json")
    data: dict[str, Any] = json.loads(path.read_bytes().decode("ascii"))
    assert CrashFacts.from_dict(data) == facts


def test_module_shorthands(tmp_path: Path, facts: CrashFacts) -> None:
    from dbgauto.report.render import render, render_index

    assert render(facts, "txt", tmp_path).read_text(encoding="utf-8").startswith("SYSTEM_THREAD")
    assert render(facts, "csv", tmp_path).name == f"{report_stem(facts)}.csv"
    assert render_index([facts], tmp_path, links=["x.html"]).name == "index.html"
    assert 'href="x.html"' in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_default_templates_work_in_the_sandbox(facts: CrashFacts, evil: CrashFacts) -> None:
    sandboxed, plain = ReportRenderer(sandboxed=True), ReportRenderer()
    for f in (facts, evil):
        for fmt in ("html", "md", "txt"):
            assert sandboxed.render_dump(f, fmt) == plain.render_dump(f, fmt)


def test_readme_example_for_the_drivers_block_renders(tmp_path: Path, facts: CrashFacts, html_check: Callable) -> None:
    readme = (packaged_templates_dir() / "README.md").read_text(encoding="utf-8")
    example = readme.split("```jinja\n")[2].split("```")[0]
    user = tmp_path / "tpl"
    user.mkdir()
    (user / "report.html").write_text(example, encoding="utf-8")
    page = html_check(ReportRenderer([user]).render_dump(facts, "html"))
    cells = page.visible
    assert "vendor.sys" in cells
    assert r"\SystemRoot\System32\drivers\vendor0.sys" in cells
    assert "Loaded drivers" not in ReportRenderer([user]).render_dump(facts, "html")


def test_real_dump_culprit_reads_like_its_stack_frame(tmp_path: Path, triage_x64_path: Path) -> None:
    """Every format names the culprit as ``module+0xoffset``, the form of the stack listing (and WinDbg's)."""
    from dbgauto.engines.jobs import facts_from_dump

    real = facts_from_dump(triage_x64_path)
    assert real.stack is not None
    assert "amdppm.sys+0x334c" in [fr.location for fr in real.stack.frames]
    r = ReportRenderer()
    txt = r.write_dump_report(real, tmp_path, "txt").read_text(encoding="utf-8")
    assert "Probable culprit: amdppm.sys+0x334c (rule: exception-address)" in txt
    md = r.write_dump_report(real, tmp_path, "md").read_text(encoding="utf-8")
    assert "**amdppm.sys** +0x334c (rule: exception-address)" in md
    html = r.write_dump_report(real, tmp_path, "html").read_text(encoding="utf-8")
    assert '<strong class="mono">amdppm.sys</strong><span class="mono">+0x334c</span>' in html
