"""The declarative codec: CrashFacts survive JSON text for any value (hypothesis), and each convention
(hex addresses, ISO UTC times, fixed tuples, kept-empty arrays, prefixed extras, nulls) does what the
schema in docs/report-schema.md says."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, ClassVar

import pytest
from hypothesis import given, settings
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
from dbgauto.errors import CodecError, DbgautoError
from dbgauto.util.codec import KEEP, Extras, Hex, from_json, iso_z, parse_int, parse_time, to_json

i64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # negatives: hand-written or corrupt values keep their sign
oi = st.one_of(st.none(), i64)
txt = st.text(max_size=20)  # any code point, lone surrogates included
otxt = st.one_of(st.none(), txt)
times = st.datetimes(
    min_value=datetime(1601, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))]),
)
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), txt),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(txt, inner, max_size=3)),
    max_leaves=8,
)

crash_facts = st.builds(
    CrashFacts,
    source=st.one_of(
        st.none(),
        st.builds(SourceFact, path=txt, size=oi, sha256_head_tail_plus_size=otxt, mtime=st.one_of(st.none(), times)),
    ),
    variety=otxt,
    dump_type=oi,
    dump_type_meaning=otxt,
    machine=otxt,
    is_64bit=st.one_of(st.none(), st.booleans()),
    os_build=oi,
    os_major=oi,
    os_name=otxt,
    product_type=oi,
    processors=oi,
    crash_time=st.one_of(st.none(), times),
    uptime_seconds=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    bugcheck=st.one_of(
        st.none(),
        st.builds(
            BugcheckFact,
            code=i64,
            name=otxt,
            variant_m=st.booleans(),
            parameters=st.lists(st.builds(ParameterFact, index=st.integers(0, 4), value=oi, meaning=otxt), max_size=4),
            summary=otxt,
        ),
    ),
    pc=oi,
    culprit=st.one_of(
        st.none(),
        st.builds(
            CulpritFact, name=txt, base=oi, offset=oi, timestamp=oi, rule=otxt, address=oi, is_core=st.booleans()
        ),
    ),
    process_name=otxt,
    pid=oi,
    tid=oi,
    stack=st.one_of(
        st.none(),
        st.builds(
            StackFact,
            kind=st.sampled_from(["scan", "symbolic"]),
            frames=st.lists(
                st.builds(
                    FrameFact, index=st.integers(0, 999), address=oi, value=oi, module=otxt, offset=oi, symbol=otxt
                ),
                max_size=4,
            ),
        ),
    ),
    drivers=st.lists(
        st.builds(
            DriverFact, name=txt, path=otxt, base=oi, size=oi, timestamp=oi, checksum=oi, third_party=st.booleans()
        ),
        max_size=4,
    ),
    unloaded_drivers=st.lists(st.builds(UnloadedDriverFact, name=txt, start=oi, end=oi), max_size=3),
    engine=otxt,
    engine_version=otxt,
    comment=otxt,
    raw_output=st.dictionaries(txt, txt, max_size=3),
    warnings=st.lists(txt, max_size=3),
    experimental=st.dictionaries(st.from_regex(r"[a-w][a-z_]{0,8}", fullmatch=True), json_value, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(crash_facts)
def test_any_crash_facts_survive_json_text(facts: CrashFacts) -> None:
    text = json.dumps(to_json(facts), ensure_ascii=True)
    assert from_json(CrashFacts, json.loads(text)) == facts


@settings(max_examples=100, deadline=None)
@given(crash_facts)
def test_written_json_follows_the_schema_conventions(facts: CrashFacts) -> None:
    d = to_json(facts)
    assert d["schema"] == "dbgauto.crashfacts/1"
    assert all(v is not None and v != [] and v != {} for k, v in d.items() if k != "stack" and not k.startswith("x_"))
    if facts.pc is not None:
        assert isinstance(d["pc"], str)
        assert int(d["pc"], 16) == facts.pc  # int() reads "-0x5" too
    for drv, out in zip(facts.drivers, d.get("drivers", []), strict=True):
        assert ("base" in out) == (drv.base is not None)
        assert out["third_party"] is drv.third_party  # False is a value, not absence
    if facts.crash_time is not None:
        assert d["crash_time"].endswith("Z")
        assert datetime.fromisoformat(d["crash_time"].replace("Z", "+00:00")) == facts.crash_time
    for key, value in facts.experimental.items():
        assert d[f"x_{key}"] == value


# ---------------------------------------------------------------- conventions on a small model


@dataclass(frozen=True, slots=True)
class _Run:
    base: Hex
    pages: int


@dataclass(frozen=True, slots=True)
class _Doc:
    JSON_SCHEMA: ClassVar[str] = "test.doc/1"

    name: str
    address: Hex | None = None
    count: int | None = None
    runs: tuple[tuple[Hex, int], ...] | None = None
    items: Annotated[tuple[_Run, ...], KEEP] = ()
    when: datetime | None = None
    extra: Annotated[dict[str, Any], Extras("x_")] = None  # type: ignore[assignment]


def test_conventions_on_a_small_model() -> None:
    doc = _Doc(
        "a",
        0xFFFFF804_7BA00000,
        3,
        ((0x1, 0x9F), (0x100, 2)),
        (),
        datetime(2021, 2, 21, 1, 38, 22, tzinfo=UTC),
        {"k": 1},
    )
    d = to_json(doc)
    assert d == {
        "schema": "test.doc/1",
        "name": "a",
        "address": "0xfffff8047ba00000",  # above 2**53: a string
        "count": 3,
        "runs": [["0x1", 0x9F], ["0x100", 2]],
        "items": [],  # KEEP: written although empty
        "when": "2021-02-21T01:38:22.000000Z",  # the ground truth's form: microseconds always
        "x_k": 1,
    }
    assert list(d) == ["schema", "name", "address", "count", "runs", "items", "when", "x_k"]  # fields, then extras
    assert from_json(_Doc, json.loads(json.dumps(d))) == doc
    nulls = to_json(_Doc("b", extra={}), omit_absent=False)
    assert nulls == {
        "schema": "test.doc/1",
        "name": "b",
        "address": None,
        "count": None,
        "runs": None,
        "items": [],
        "when": None,
    }
    # a falsy value that is not absent stays; an empty list or mapping in a plain field is absent
    assert to_json(_Doc("", count=0, extra={}))["count"] == 0
    assert "name" in to_json(_Doc("", extra={}))


def test_reading_is_lenient_about_numbers_and_strict_about_shapes() -> None:
    assert parse_int("0x10") == 16
    assert parse_int("-0x10") == -16
    assert parse_int("0xfffff804`7ba00000") == 0xFFFFF8047BA00000  # a WinDbg address, backtick and all
    assert parse_int("209") == 209
    assert parse_int("") is None
    assert parse_time("2021-02-21T01:38:22Z") == datetime(2021, 2, 21, 1, 38, 22, tzinfo=UTC)
    assert parse_time("2021-02-21T01:38:22") == datetime(2021, 2, 21, 1, 38, 22, tzinfo=UTC)  # no zone: UTC
    assert (
        iso_z(datetime(2021, 2, 21, 3, 38, 22, 5, tzinfo=timezone(timedelta(hours=2)))) == "2021-02-21T01:38:22.000005Z"
    )
    for bad in (
        {"name": "a", "address": "zz"},
        {"name": "a", "items": "abc"},
        {"name": "a", "runs": [["0x1"]]},
        {"name": "a", "when": "yesterday"},
    ):
        with pytest.raises(CodecError) as err:
            from_json(_Doc, bad)
        assert isinstance(err.value, DbgautoError)
    with pytest.raises(CodecError):
        from_json(CrashFacts, {"bugcheck": ["not", "an", "object"]})
    with pytest.raises(CodecError):
        from_json(CrashFacts, [])  # type: ignore[arg-type]


def test_a_type_without_a_convention_is_refused_when_first_used() -> None:
    @dataclass(frozen=True)
    class _Bad:
        blob: bytes

    with pytest.raises(TypeError, match="no JSON convention"):
        to_json(_Bad(b"x"))
