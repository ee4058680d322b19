"""memo_sized: a per-process memo that never keeps a value made from a huge (untrusted) argument."""

from __future__ import annotations

from dbgauto.util.memo import memo_sized


def test_small_arguments_are_remembered_and_huge_ones_are_not() -> None:
    calls: list[int] = []

    @memo_sized(2, max_len=3)
    def listed(items: tuple[int, ...]) -> list[int]:
        calls.append(len(items))
        return list(items)

    small, huge = (1, 2, 3), tuple(range(4))
    assert listed(small) is listed(small)
    assert calls == [3]
    assert listed(huge) == list(huge)
    assert listed(huge) is not listed(huge)  # computed every time, never kept
    assert calls == [3, 4, 4, 4]
    listed((4,))
    listed((5,))  # the memo holds two entries: the oldest goes
    listed(small)
    assert calls[-1] == 3
