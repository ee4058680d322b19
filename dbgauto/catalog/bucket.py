"""Which bucket a crash belongs to, read through one function so the rule can change in one place.

Until the analysis layer names a bucket itself (``facts["bucket_id"]``), the bucket is the bug check name
(or code) plus the culprit module, lower-cased: the same stop in the same driver is one problem to fix.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bucket_of"]


def bucket_of(facts: dict[str, Any] | None) -> str | None:
    """The bucket id of one dump's facts dict (``CrashFacts.to_dict()``); None without a bug check."""
    if not facts:
        return None
    given = facts.get("bucket_id")
    if isinstance(given, str) and given:
        return given
    bug = facts.get("bugcheck") if isinstance(facts.get("bugcheck"), dict) else None
    if bug is None:
        return None
    name = bug.get("name") or str(bug.get("code") or "")
    if not name:
        return None
    culprit = facts.get("culprit") if isinstance(facts.get("culprit"), dict) else None
    module = (culprit or {}).get("name") or "unknown"
    return f"{name}_{str(module).lower()}"
