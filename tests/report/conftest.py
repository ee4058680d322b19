"""Fixtures for report tests: facts built directly (ordinary and hostile) and an HTML checker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Final

import pytest

from dbgauto.analysis.facts import (
    CrashFacts,
    CulpritFact,
    DriverFact,
    FrameFact,
    SourceFact,
    StackFact,
    UnloadedDriverFact,
)
from dbgauto.analysis.facts import describe_bugcheck as describe

HOSTILE: Final = "<script>alert(1)</script>{{ 'PW' ~ 'NED' }}{% raw %}../..\\..\\x\x00\x1b[31m\x07\udc80\ufffd\"'&amp;"

VOID: Final = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]
)


class HtmlCheck(HTMLParser):
    """Parse a page: tag balance, script bodies, attribute values and visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.scripts: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs.extend((tag, k, v) for k, v in attrs)
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs.extend((tag, k, v) for k, v in attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)

    @classmethod
    def check(cls, page: str) -> HtmlCheck:
        parser = cls()
        parser.feed(page)
        parser.close()
        assert not parser.errors, parser.errors
        assert not parser.stack, f"unclosed: {parser.stack}"
        return parser

    @property
    def visible(self) -> str:
        return "".join(self.text)


def sample_facts(i: int = 0, *, name: str = "MEMORY.DMP") -> CrashFacts:
    base = 0xFFFFF80410000000 + i * 0x100000
    drivers = (
        DriverFact("ntoskrnl.exe", r"\SystemRoot\system32\ntoskrnl.exe", 0xFFFFF80400000000, 0x1000000, 0x1234, 1),
        DriverFact("vendor.sys", rf"\SystemRoot\System32\drivers\vendor{i}.sys", base, 0x8000, 0x5678, 2, True),
    )
    return CrashFacts(
        source=SourceFact(f"C:\\dumps\\{i}\\{name}", 1000 + i, f"{i:064x}", datetime(2024, 1, 1, tzinfo=UTC)),
        dump_type=4,
        machine="x64",
        is_64bit=True,
        os_build=19041 + (i % 3),
        processors=8,
        crash_time=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=7 * i),
        bugcheck=describe(0xD1 if i % 2 else 0x1000007E, [1, 2, 3, base + 0x10]),
        pc=base + 0x10,
        culprit=CulpritFact("vendor.sys", base, 0x10, 0x5678, "pc", base + 0x10),
        process_name="System",
        pid=4,
        tid=8,
        stack=StackFact("scan", [FrameFact(0, 0xFFFF800000001000, base + 0x10, "vendor.sys", 0x10)]),
        drivers=drivers,
        unloaded_drivers=(UnloadedDriverFact("old.sys", 1, 2),),
        engine="native",
        warnings=("a warning",),
    )


def hostile_facts() -> CrashFacts:
    """Every text field carries markup, template syntax, traversal, control characters and a lone surrogate."""
    base = 0xFFFFF80410000000
    evil = DriverFact(f"{HOSTILE}.sys", f"\\SystemRoot\\{HOSTILE}", base, 0x1000, 1, 2, True)
    return CrashFacts(
        source=SourceFact(f"../../{HOSTILE}/../CON.dmp", 10),
        variety=HOSTILE,
        machine=HOSTILE,
        os_name=HOSTILE,
        is_64bit=True,
        crash_time=datetime(2024, 1, 1, tzinfo=UTC),
        bugcheck=describe(0xD1, [1, 2, 3, base]),
        culprit=CulpritFact(f"{HOSTILE}.sys", base, 0, 1, HOSTILE, base),
        process_name=HOSTILE,
        stack=StackFact("symbolic", [FrameFact(0, 1, 2, HOSTILE, 3, f"{HOSTILE}!f+0x1```")]),
        drivers=(evil,),
        unloaded_drivers=(UnloadedDriverFact(HOSTILE, 1, 2),),
        engine=HOSTILE,
        engine_version=HOSTILE,
        comment=HOSTILE,
        raw_output={HOSTILE: f"</pre></details>{HOSTILE}"},
        warnings=(HOSTILE,),
        experimental={"note": HOSTILE},
    )


@pytest.fixture
def facts() -> CrashFacts:
    return sample_facts()


@pytest.fixture
def evil() -> CrashFacts:
    return hostile_facts()


@pytest.fixture
def make_facts() -> type[object] | object:
    return sample_facts


@pytest.fixture
def html_check() -> object:
    return HtmlCheck.check


@pytest.fixture
def hostile_text() -> str:
    return HOSTILE
