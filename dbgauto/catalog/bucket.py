"""Which bucket a crash belongs to, read through one function so the rule can change in one place.

The analysis layer names the bucket (``facts["bucket_id"]``, :mod:`dbgauto.analysis.bucket`); facts recorded
before it did (an older catalog, a debugger log without FAILURE_BUCKET_ID) get the bug check name plus the culprit
module in the debugger's spelling (``amdppm``), the coarsest form of the same key.
"""

from __future__ import annotations

from typing import Any

from dbgauto.vocab.modules import module_short_name

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
    module = (culprit or {}).get("name")
    return f"{name}_{module_short_name(str(module)) if module else 'unknown'}"
