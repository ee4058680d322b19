"""Small charts as inline SVG: no JavaScript library, no network, readable when printed or mailed.

Each chart function returns :class:`markupsafe.Markup`; every label is escaped here, so text that came
from a dump (driver names, bug check names) cannot inject markup. The aggregation helpers turn a list of
:class:`CrashFacts` into ``(label, count)`` rows for the four index charts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Final

from markupsafe import Markup, escape

from dbgauto.analysis.facts import CrashFacts
from dbgauto.report.textsafe import visible

__all__ = [
    "bar_chart",
    "column_chart",
    "crashes_per_build",
    "crashes_per_day",
    "top_bugchecks",
    "top_culprits",
]

_FONT: Final = "font-family:system-ui,sans-serif;font-size:12px"
_BAR: Final = "#3b6ea8"
_MAX_DAYS: Final = 92  # a longer span is shown per month


def _label(text: str, limit: int = 36) -> str:
    text = visible(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _empty(title: str, width: int) -> Markup:
    return Markup(
        f'<svg role="img" width="{width}" height="40" '
        f'aria-label="{escape(title)}"><text x="4" y="24" style="{_FONT};fill:#666">no data</text></svg>'
    )


def bar_chart(rows: Sequence[tuple[str, int]], *, title: str, width: int = 580) -> Markup:
    """Horizontal bars, one per row, largest first as given; labels left, counts right."""
    if not rows:
        return _empty(title, width)
    label_w, bar_h, gap = 300, 18, 6  # 300 px holds the 36 characters _label keeps (upper case, 12 px)
    plot_w = width - label_w - 50
    top = max(c for _, c in rows) or 1
    height = len(rows) * (bar_h + gap) + gap
    parts = [
        f'<svg role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">'
    ]
    for i, (label, count) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = max(1, round(plot_w * count / top))
        parts.append(
            f"<g><title>{escape(visible(label))}: {count}</title>"
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" style="{_FONT}">{escape(_label(label))}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{_BAR}"/>'
            f'<text x="{label_w + w + 4}" y="{y + 13}" style="{_FONT}">{count}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(rows: Sequence[tuple[str, int]], *, title: str, width: int = 940, height: int = 180) -> Markup:
    """Vertical columns in the given order (a time axis); a few evenly spaced labels under them."""
    if not rows:
        return _empty(title, width)
    left, bottom, top_pad = 36, 34, 10
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = max(c for _, c in rows) or 1
    step = plot_w / len(rows)
    col_w = max(1.0, step * 0.8)
    parts = [
        f'<svg role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 10}" y2="{top_pad + plot_h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top_pad + 10}" text-anchor="end" style="{_FONT}">{top}</text>',
        f'<text x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end" style="{_FONT}">0</text>',
    ]
    every = max(1, len(rows) // 8)
    for i, (label, count) in enumerate(rows):
        x = left + i * step
        h = plot_h * count / top
        parts.append(
            f'<g><title>{escape(visible(label))}: {count}</title><rect x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" '
            f'width="{col_w:.1f}" height="{h:.1f}" fill="{_BAR}"/></g>'
        )
        if i % every == 0:
            lx, anchor = x + col_w / 2, "middle"
            if lx + 3.5 * len(label) > width:  # keep the last labels inside the picture
                lx, anchor = width - 2, "end"
            parts.append(
                f'<text x="{lx:.1f}" y="{height - bottom + 16}" text-anchor="{anchor}" '
                f'style="{_FONT}">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


# --------------------------------------------------------------------------- aggregations


def crashes_per_day(facts: Iterable[CrashFacts]) -> tuple[str, list[tuple[str, int]]]:
    """(unit, rows): per day with the empty days filled in, or per month when the span exceeds ~3 months."""
    days = Counter(f.crash_time.date() for f in facts if f.crash_time is not None)
    if not days:
        return "day", []
    first, last = min(days), max(days)
    if (last - first).days < _MAX_DAYS:
        span = (last - first).days + 1
        return "day", [(d.isoformat(), days.get(d, 0)) for d in (first + timedelta(n) for n in range(span))]
    months: Counter[str] = Counter()
    for d, n in days.items():
        months[f"{d.year:04d}-{d.month:02d}"] += n
    rows = []
    cursor = date(first.year, first.month, 1)
    while cursor <= last:
        key = f"{cursor.year:04d}-{cursor.month:02d}"
        rows.append((key, months.get(key, 0)))
        cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
    return "month", rows


def _top(counter: Counter[str], limit: int) -> list[tuple[str, int]]:
    rows = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(rows) > limit:
        rest = sum(n for _, n in rows[limit - 1 :])
        rows = [*rows[: limit - 1], ("(other)", rest)]
    return rows


def top_bugchecks(facts: Iterable[CrashFacts], limit: int = 10) -> list[tuple[str, int]]:
    counter: Counter[str] = Counter()
    for f in facts:
        if f.bugcheck is not None:
            counter[f"{f.bugcheck.code_text} {f.bugcheck.name or 'unknown'}"] += 1  # code first: labels get cut
    return _top(counter, limit)


def top_culprits(facts: Iterable[CrashFacts], limit: int = 10) -> list[tuple[str, int]]:
    return _top(Counter(f.culprit.name for f in facts if f.culprit is not None), limit)


def crashes_per_build(facts: Iterable[CrashFacts], limit: int = 10) -> list[tuple[str, int]]:
    return _top(Counter(str(f.os_build) for f in facts if f.os_build is not None), limit)
