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


_LATEST_OK: Final = (
    " FROM dumps AS d JOIN results AS r ON r.id = d.latest_result_id WHERE r.status = 'ok' AND r.bucket IS NOT NULL"
)


def changes_since(conn: sqlite3.Connection, since: str, *, limit: int = 50) -> dict[str, Any]:
    """The changes (see the module doc) for results recorded at or after ``since`` (ISO 8601 UTC).

    Memory follows the number of buckets and hosts, not of dumps: the rows are streamed from cursors into
    per-bucket and per-host counters (at 100,000 dumps a list of the rows cost ~75 MB)."""
    recorded = conn.execute(f"SELECT count(*) {_LATEST_OK} AND r.finished >= ?", (since,)).fetchone()[0]
    failed = conn.execute(
        "SELECT count(*) FROM dumps AS d JOIN results AS r ON r.id = d.latest_result_id"
        " WHERE r.status = 'failed' AND r.finished >= ?",
        (since,),
    ).fetchone()[0]
    out: dict[str, Any] = {
        "since": since,
        "recorded": int(recorded),
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
    # new: no dump of the bucket was recorded before `since`
    new_rows = conn.execute(
        "SELECT r.bucket, count(*) AS n, count(DISTINCT nullif(r.host, '')) AS hosts,"
        f" min(nullif(r.crash_time, '')) AS first_seen {_LATEST_OK}"
        " GROUP BY r.bucket HAVING min(r.finished) >= ? ORDER BY n DESC, r.bucket",
        (since,),
    ).fetchall()
    new_buckets = {r["bucket"] for r in new_rows}
    out["new_buckets"] = [
        {"bucket": r["bucket"], "count": r["n"], "hosts": r["hosts"], "first_seen": r["first_seen"]}
        for r in new_rows[:limit]
    ]
    end = None
    for (text,) in conn.execute(f"SELECT r.crash_time {_LATEST_OK} AND r.finished >= ?", (since,)):
        t = _when(text)
        if t is not None and (end is None or t > end):
            end = t
    if end is None:
        return out
    start = end - _WINDOW
    base_start = start - timedelta(days=BASELINE_DAYS)
    out["window"] = {"start": start.isoformat(), "end": end.isoformat()}
    window: dict[str, int] = defaultdict(int)
    culprit: dict[str, str | None] = {}
    stamp_window: dict[str, int] = {}
    stamp_before: dict[str, int] = {}
    baseline: dict[str, int] = defaultdict(int)
    hosts: dict[str, int] = defaultdict(int)
    host_buckets: dict[str, set[str]] = defaultdict(set)
    for bucket, crash_time, name, stamp, host in conn.execute(
        f"SELECT r.bucket, r.crash_time, r.culprit, r.culprit_timestamp, r.host {_LATEST_OK}"
    ):
        t = _when(crash_time)
        if t is None:
            continue
        if start < t <= end:
            window[bucket] += 1
            culprit.setdefault(bucket, name)
            if stamp is not None and stamp > stamp_window.get(bucket, -1):
                stamp_window[bucket] = stamp
                culprit[bucket] = name  # the driver of the newest timestamp: the one that regressed
            if host:
                hosts[host] += 1
                host_buckets[host].add(bucket)
        elif t <= start:
            if stamp is not None and stamp > stamp_before.get(bucket, -1):
                stamp_before[bucket] = stamp
            if t > base_start:
                baseline[bucket] += 1
    for b, n in sorted(window.items(), key=lambda kv: (-kv[1], kv[0])):
        if b in new_buckets:
            continue
        daily = baseline[b] / BASELINE_DAYS
        if n >= RISE_MIN and n >= RISE_FACTOR * daily:
            out["rising"].append({"bucket": b, "window": n, "baseline_daily": round(daily, 3)})
        if b in stamp_window and b in stamp_before and stamp_window[b] > stamp_before[b]:
            out["regressions"].append(
                {
                    "bucket": b,
                    "culprit": culprit[b],
                    "timestamp": f"{stamp_window[b]:#x}",
                    "previous_timestamp": f"{stamp_before[b]:#x}",
                    "crashes": n,
                }
            )
    out["rising"] = out["rising"][:limit]
    out["regressions"] = out["regressions"][:limit]
    out["repeat_hosts"] = [
        {"host": h, "crashes": n, "buckets": sorted(host_buckets[h])}
        for h, n in sorted(hosts.items(), key=lambda kv: (-kv[1], kv[0]))
        if n >= REPEAT_MIN
    ][:limit]
    return out
