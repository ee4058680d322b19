"""One rule for the per-process memos: at most ``limit`` entries, the oldest dropped first.

Several layers remember work across the dumps a worker sees (symbol tables, the stores' state, a string pool's
names, a driver set's compressed form); each keeps its own dict and stores through :func:`remember`, and none keeps
what it made from more than :data:`KEPT_TEXT` characters of a dump's text.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["KEPT_TEXT", "remember"]

# What is made from a driver's name or path is remembered only up to this many characters of text: real NT
# paths are under 260 characters; a longer one (a hostile dump) is worked out every time, never kept.
KEPT_TEXT = 1024

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key`` (the oldest entry goes when ``memo`` holds ``limit``); returns ``value``."""
    if key not in memo and len(memo) >= limit:
        memo.pop(next(iter(memo)))
    memo[key] = value
    return value
