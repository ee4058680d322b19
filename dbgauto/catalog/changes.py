"""What changed: new buckets, sharply rising buckets, regressions after a newer driver, repeat hosts.

The rules (docs/scheduling.md, "What changed"), over every dump's newest ok result:

- **since** is a UTC time compared with when dbgauto *recorded* a result (for a run summary: the run's start).
- **window**: the 24 hours of crash time ending at the newest crash among the results recorded since
  ``since``; **baseline**: the 14 days of crash time before the window.
- **new bucket**: a bucket none of whose dumps was recorded before ``since``.
- **rising bucket**: not new, at least :data:`RISE_MIN` crashes in the window, and at least
  :data:`RISE_FACTOR` times its baseline daily mean (baseline crashes / 14).
- **regression**: a bucket with crashes in the window whose culprit driver is newer (a larger PE timestamp)
  than in every earlier crash of the bucket: a driver update that was meant to fix it did not.
- **repeat host**: a host with at least :data:`REPEAT_MIN` crashes in the window.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Final

__all__ = ["BASELINE_DAYS", "REPEAT_MIN", "RISE_FACTOR", "RISE_MIN", "changes_since"]

RISE_MIN: Final = 3
RISE_FACTOR: Final = 3.0
BASELINE_DAYS: Final = 14
REPEAT_MIN: Final = 2
_WINDOW: Final = timedelta(days=1)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def changes_since(conn: sqlite3.Connection, since: str, *, limit: int = 50) -> dict[str, Any]:
    """The changes (see the module doc) for results recorded at or after ``since`` (ISO 8601 UTC)."""
    rows = conn.execute(
        "SELECT r.bucket, r.crash_time, r.culprit, r.culprit_timestamp, r.host, r.finished FROM dumps AS d"
        " JOIN results AS r ON r.id = d.latest_result_id WHERE r.status = 'ok' AND r.bucket IS NOT NULL"
    ).fetchall()
    recorded_new = [r for r in rows if r["finished"] >= since]
    failed = conn.execute(
        "SELECT count(*) FROM dumps AS d JOIN results AS r ON r.id = d.latest_result_id"
        " WHERE r.status = 'failed' AND r.finished >= ?",
        (since,),
    ).fetchone()[0]
    out: dict[str, Any] = {
        "since": since,
        "recorded": len(recorded_new),
        "failed": int(failed),
        "window": None,
        "new_buckets": [],
        "rising": [],
        "regressions": [],
        "repeat_hosts": [],
        "rules": {
            "rise_min": RISE_MIN,
            "rise_factor": RISE_FACTOR,
            "baseline_days": BASELINE_DAYS,
            "repeat_min": REPEAT_MIN,
        },
    }
    old_buckets = {r["bucket"] for r in rows if r["finished"] < since}
    new_counts: dict[str, list[Any]] = defaultdict(list)
    for r in recorded_new:
        if r["bucket"] not in old_buckets:
            new_counts[r["bucket"]].append(r)
    out["new_buckets"] = [
        {
            "bucket": b,
            "count": len(items),
            "hosts": len({i["host"] for i in items if i["host"]}),
            "first_seen": min((i["crash_time"] or "" for i in items), default="") or None,
        }
        for b, items in sorted(new_counts.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:limit]
    ]
    times = [t for t in (_when(r["crash_time"]) for r in recorded_new) if t is not None]
    if not times:
        return out
    end = max(times)
    start = end - _WINDOW
    base_start = start - timedelta(days=BASELINE_DAYS)
    out["window"] = {"start": start.isoformat(), "end": end.isoformat()}
    window: dict[str, list[Any]] = defaultdict(list)
    before: dict[str, list[Any]] = defaultdict(list)
    baseline: dict[str, int] = defaultdict(int)
    hosts: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        t = _when(r["crash_time"])
        if t is None:
            continue
        if start < t <= end:
            window[r["bucket"]].append(r)
            if r["host"]:
                hosts[r["host"]].append(r)
        elif t <= start:
            before[r["bucket"]].append(r)
            if t > base_start:
                baseline[r["bucket"]] += 1
    for b, items in sorted(window.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if b in new_counts:
            continue
        daily = baseline[b] / BASELINE_DAYS
        if len(items) >= RISE_MIN and len(items) >= RISE_FACTOR * daily:
            out["rising"].append({"bucket": b, "window": len(items), "baseline_daily": round(daily, 3)})
        stamps = [i["culprit_timestamp"] for i in items if i["culprit_timestamp"] is not None]
        old = [i["culprit_timestamp"] for i in before[b] if i["culprit_timestamp"] is not None]
        if stamps and old and max(stamps) > max(old):
            out["regressions"].append(
                {
                    "bucket": b,
                    "culprit": items[0]["culprit"],
                    "timestamp": f"{max(stamps):#x}",
                    "previous_timestamp": f"{max(old):#x}",
                    "crashes": len(items),
                }
            )
    out["rising"] = out["rising"][:limit]
    out["regressions"] = out["regressions"][:limit]
    out["repeat_hosts"] = [
        {"host": h, "crashes": len(items), "buckets": sorted({i["bucket"] for i in items})}
        for h, items in sorted(hosts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        if len(items) >= REPEAT_MIN
    ][:limit]
    return out
