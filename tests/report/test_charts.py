"""Inline-SVG charts and the aggregations behind the index page."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from xml.etree import ElementTree

from dbgauto.analysis.facts import CrashFacts, CulpritFact
from dbgauto.report import charts


def _svg(markup: str) -> ElementTree.Element:
    return ElementTree.fromstring(str(markup))  # well-formed XML, not just HTML-tolerable


def test_bar_chart_scales_bars_and_escapes_labels() -> None:
    svg = charts.bar_chart([("<b>a&b</b>", 10), ("second", 5)], title="t")
    root = _svg(svg)
    widths = [float(r.get("width", "0")) for r in root.iter("rect")]
    assert widths[0] == 2 * widths[1]
    texts = ["".join(t.itertext()) for t in root.iter("text")]
    assert "<b>a&b</b>" in texts
    assert "<b>" not in str(svg)


def test_empty_chart_says_no_data() -> None:
    assert "no data" in str(charts.bar_chart([], title="t"))
    assert "no data" in str(charts.column_chart([], title="t"))


def test_column_chart_has_one_column_per_row() -> None:
    rows = [(f"2024-01-{d:02d}", d % 3) for d in range(1, 31)]
    root = _svg(charts.column_chart(rows, title="per day"))
    assert len([r for r in root.iter("rect")]) == 30
    titles = ["".join(t.itertext()) for t in root.iter("title")]
    assert titles[0] == "2024-01-01: 1"


def _at(facts: CrashFacts, *parts: int) -> CrashFacts:
    return replace(facts, crash_time=datetime(*parts, tzinfo=UTC))  # type: ignore[misc]


def test_crashes_per_day_fills_gaps(make_facts: Callable[..., CrashFacts]) -> None:
    f = make_facts(0)
    unit, rows = charts.crashes_per_day([_at(f, 2024, 3, 1), _at(f, 2024, 3, 1, 5), _at(f, 2024, 3, 4)])
    assert unit == "day"
    assert rows == [("2024-03-01", 2), ("2024-03-02", 0), ("2024-03-03", 0), ("2024-03-04", 1)]


def test_long_spans_are_shown_per_month(make_facts: Callable[..., CrashFacts]) -> None:
    f = make_facts(0)
    unit, rows = charts.crashes_per_day([_at(f, 2023, 10, 30), _at(f, 2024, 2, 10), _at(f, 2024, 2, 11)])
    assert unit == "month"
    assert rows == [("2023-10", 1), ("2023-11", 0), ("2023-12", 0), ("2024-01", 0), ("2024-02", 2)]


def test_top_lists_count_and_fold_the_rest(make_facts: Callable[..., CrashFacts]) -> None:
    base = make_facts(0)
    items = [replace(base, culprit=CulpritFact(f"d{i % 12}.sys")) for i in range(30)]
    rows = charts.top_culprits(items, limit=5)
    assert len(rows) == 5
    assert rows[-1][0] == "(other)"
    assert sum(n for _, n in rows) == 30
    assert rows[0] == ("d0.sys", 3)
    bugchecks = dict(charts.top_bugchecks([make_facts(0), make_facts(1), make_facts(2)]))
    assert bugchecks == {
        "0x1000007E SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M": 2,
        "0xD1 DRIVER_IRQL_NOT_LESS_OR_EQUAL": 1,
    }
    builds = dict(charts.crashes_per_build([make_facts(i) for i in range(6)]))
    assert builds == {"19041": 2, "19042": 2, "19043": 2}
    assert all(re.fullmatch(r"\d+", k) for k in builds)
