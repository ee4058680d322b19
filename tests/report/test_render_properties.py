"""Any facts render: empty facts, and random facts (Hypothesis) in every format, with a valid HTML page."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbgauto.analysis.facts import (
    BugcheckFact,
    CrashFacts,
    CulpritFact,
    DriverFact,
    FrameFact,
    ParameterFact,
    SourceFact,
    StackFact,
    UnloadedDriverFact,
)
from dbgauto.report.render import ReportRenderer

RENDERER = ReportRenderer()
u64 = st.integers(min_value=0, max_value=2**64 - 1)
text = st.text(max_size=40)
opt = st.one_of(st.none(), u64)

facts_strategy = st.builds(
    CrashFacts,
    source=st.one_of(st.none(), st.builds(SourceFact, path=text, size=opt)),
    variety=st.one_of(st.none(), text),
    machine=st.one_of(st.none(), text),
    is_64bit=st.one_of(st.none(), st.booleans()),
    os_build=st.one_of(st.none(), st.integers(0, 99999)),
    processors=st.one_of(st.none(), st.integers(0, 4096)),
    crash_time=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    uptime_seconds=st.one_of(st.none(), st.floats(0, 1e9)),
    bugcheck=st.one_of(
        st.none(),
        st.builds(
            BugcheckFact,
            code=st.integers(0, 2**32 - 1),
            name=st.one_of(st.none(), text),
            parameters=st.lists(st.builds(ParameterFact, index=st.integers(1, 4), value=opt, meaning=text), max_size=4),
        ),
    ),
    pc=opt,
    culprit=st.one_of(st.none(), st.builds(CulpritFact, name=text, base=opt, offset=opt, rule=text)),
    process_name=st.one_of(st.none(), text),
    pid=st.one_of(st.none(), st.integers(0, 2**32)),
    stack=st.one_of(
        st.none(),
        st.builds(
            StackFact,
            kind=st.sampled_from(["scan", "symbolic"]),
            frames=st.lists(
                st.builds(FrameFact, index=st.integers(0, 99), address=opt, value=opt, module=text, symbol=text),
                max_size=5,
            ),
        ),
    ),
    drivers=st.lists(st.builds(DriverFact, name=text, path=text, base=opt, size=opt), max_size=5),
    unloaded_drivers=st.lists(st.builds(UnloadedDriverFact, name=text, start=opt, end=opt), max_size=3),
    comment=st.one_of(st.none(), text),
    raw_output=st.dictionaries(text, text, max_size=3),
    warnings=st.lists(text, max_size=3),
)


def test_empty_facts_render_in_every_format(html_check: Callable) -> None:
    empty = CrashFacts()
    for fmt in ("html", "md", "txt", "json"):
        assert RENDERER.render_dump(empty, fmt)
    html_check(RENDERER.render_dump(empty, "html"))
    html_check(RENDERER.render_index([empty, empty]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts_strategy)
def test_random_facts_round_trip_and_render(facts: CrashFacts) -> None:
    assert CrashFacts.from_dict(json.loads(json.dumps(facts.to_dict(), ensure_ascii=True))) == facts
    for fmt in ("html", "md", "txt"):
        out = RENDERER.render_dump(facts, fmt)
        out.encode("utf-8")  # no lone surrogate survives into the output
    page = RENDERER.render_dump(facts, "html")
    from html.parser import HTMLParser

    class Scripts(HTMLParser):
        found = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "script":
                Scripts.found += 1

    Scripts().feed(page)
    assert Scripts.found == 0
    RENDERER.render_index([facts]).encode("utf-8")


def test_bug_check_table_is_loaded_lazily_once() -> None:
    code = (
        "import dbgauto.vocab.bugchecks as b; print(b._table.cache_info().currsize);"
        "b.lookup(0xD1); b.lookup(0x7E); print(b._table.cache_info().currsize, b._table.cache_info().misses)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["0", "1", "1"]


def test_crash_time_stays_utc() -> None:
    f = CrashFacts(crash_time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert "2024-01-02 03:04:05 UTC" in RENDERER.render_dump(f, "txt")
