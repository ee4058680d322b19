"""util.memo.remember: the one eviction rule of the per-process memos (oldest entry first, at most ``limit``)."""

from __future__ import annotations

from dbgauto.util.memo import remember


def test_the_oldest_entry_goes_and_a_stored_key_is_replaced_in_place() -> None:
    memo: dict[str, int] = {}
    assert remember(memo, "a", 1, 2) == 1
    remember(memo, "b", 2, 2)
    remember(memo, "a", 10, 2)  # a key already there: replaced, nothing evicted
    assert memo == {"a": 10, "b": 2}
    remember(memo, "c", 3, 2)  # full: the oldest ("a", stored first) goes
    assert memo == {"b": 2, "c": 3}
