"""Per-process memos of values read from dumps, bounded in entries *and* in what one entry may hold.

A fleet's dumps repeat the same driver lists, so several layers remember their work by value. Those values
come from untrusted files: a list of a million entries is computed and returned, never kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sized
from typing import Final, TypeVar

__all__ = ["MAX_KEPT_ITEMS", "memo_sized"]

MAX_KEPT_ITEMS: Final = 4096  # a real driver list has 100-400 entries

A = TypeVar("A", bound=Sized)
R = TypeVar("R")


def memo_sized(maxsize: int, max_len: int = MAX_KEPT_ITEMS) -> Callable[[Callable[[A], R]], Callable[[A], R]]:
    """``functools.lru_cache(maxsize)`` for a function of one hashable, sized argument, bypassed when the
    argument is longer than ``max_len``."""

    def wrap(fn: Callable[[A], R]) -> Callable[[A], R]:
        cached = functools.lru_cache(maxsize=maxsize)(fn)

        @functools.wraps(fn)
        def call(arg: A) -> R:
            return cached(arg) if len(arg) <= max_len else fn(arg)

        call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return call

    return wrap
