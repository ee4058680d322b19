"""The drivers table body of report.html, built in Python: the one large table of a report.

A small dump lists ~150 drivers; the same rows through the template loop cost ~2 ms per report (8 cells,
each finalized and escaped), here ~0.5 ms, which keeps a report set of 1,000 dumps within its budget.
Text cells get the same treatment as ``{{ }}`` output: control characters made visible, then HTML-escaped.
To change the columns, override the ``drivers`` block and loop over ``facts.drivers`` (templates/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from dbgauto.analysis.facts import DriverFact
from dbgauto.report.textsafe import visible
from dbgauto.vocab.fmt import addr_text, hex_text

__all__ = ["driver_rows"]


def _text(value: str | None) -> Markup:
    if value is None:
        return Markup("")
    return escape(value if value.isprintable() else visible(value))


def driver_rows(drivers: Sequence[DriverFact], culprit: DriverFact | None, is_64bit: bool | None) -> Markup:
    """``<tr>`` rows: name, base, end, size, timestamp, checksum, third-party, path; the culprit's row marked."""
    out = []
    for d in drivers:
        mark = ' class="culprit" title="probable culprit"' if d is culprit else ""
        out.append(
            f"<tr{mark}><td>{_text(d.name)}</td>"
            f"<td>{addr_text(d.base, is_64bit)}</td><td>{addr_text(d.end, is_64bit)}</td>"
            f"<td>{hex_text(d.size)}</td><td>{hex_text(d.timestamp, 8)}</td><td>{hex_text(d.checksum)}</td>"
            f"<td>{'yes' if d.third_party else ''}</td><td>{_text(d.path)}</td></tr>\n"
        )
    return Markup("".join(out))
