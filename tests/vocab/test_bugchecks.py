"""The packaged bug check table: names and parameter meanings as the reference (and our CSV) states them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import dbgauto
from dbgauto.analysis.facts import describe_bugcheck as describe
from dbgauto.vocab.bugchecks import BugcheckInfo, all_bugchecks, base_code, bugcheck_name, is_m_variant, lookup

CSV_PATH = Path(dbgauto.__file__).parent / "vocab" / "data" / "bugchecks.csv"


def test_every_csv_row_is_served_once() -> None:
    with open(CSV_PATH, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = all_bugchecks()
    assert len(table) == len(rows) == 379
    assert [info.code for info in table] == sorted(int(r["code"], 16) for r in rows)


def test_m_variant_row_is_its_own_row() -> None:
    info = lookup(0x1000007E)
    assert info == BugcheckInfo(
        code=0x1000007E,
        name="SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M",
        parameters=(
            "unhandled exception code",
            "address where exception occurred",
            "exception record address",
            "context record address",
        ),
        summary="Variant of 0x7E: a system thread raised an exception no handler caught.",
    )


def test_depends_on_parameter_1_is_kept_as_text_and_empty_is_none() -> None:
    bad_pool = lookup(0x19)
    assert bad_pool is not None
    assert bad_pool.name == "BAD_POOL_HEADER"
    assert bad_pool.parameters[1:] == ("depends on Parameter 1",) * 3
    manual = lookup(0xE2)
    assert manual is not None
    assert manual.parameters == (None, None, None, None)


def test_unlisted_m_variant_falls_back_to_base_code() -> None:
    info = lookup(0x100000D1)
    assert info is not None
    assert info.name == "DRIVER_IRQL_NOT_LESS_OR_EQUAL_M"
    assert info.parameters[3] == "address that referenced memory"


@pytest.mark.parametrize("code", [0xDEADBEEF, 0x0, 0x7FFFFFFF])
def test_unknown_code_is_none(code: int) -> None:
    assert lookup(code) is None


def test_m_variant_helpers() -> None:
    assert is_m_variant(0x1000008E)
    assert base_code(0x1000008E) == 0x8E
    assert not is_m_variant(0x8E)
    assert base_code(0xC0000221) == 0xC0000221  # STATUS_IMAGE_CHECKSUM_MISMATCH: bit 28 is not an _M marker


def test_describe_attaches_meanings() -> None:
    fact = describe(0xD1, [0x4, 0x2, 0x1, 0xF832035C])
    assert fact.name == "DRIVER_IRQL_NOT_LESS_OR_EQUAL"
    assert not fact.variant_m
    assert [(p.index, p.value) for p in fact.parameters] == [(1, 4), (2, 2), (3, 1), (4, 0xF832035C)]
    assert fact.parameters[3].meaning == "address that referenced memory"
    assert describe(0x1000007E, [0, 0, 0, 0]).variant_m
    unknown = describe(0xDEADBEEF, [1])
    assert unknown.name is None
    assert unknown.parameters[0].meaning is None


def test_bugcheck_name_is_the_reference_name() -> None:
    assert bugcheck_name(0x1000007E) == "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M"
    assert bugcheck_name(0xDEADBEEF) is None
    assert bugcheck_name(None) is None
