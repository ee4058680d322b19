"""``lm`` tables → ModuleEntry (``lm``, ``lm k``, ``lm m x*``, ``lm sm``, ``lmv``/``lmvm`` basics).

Rows are ``start end name [ (status) ] [image name | symbol file]`` with 64-bit (backtick) or 32-bit addresses and
often trailing spaces. Rows after ``Unloaded modules:`` are flagged ``unloaded``. ``lmv`` detail lines (indented
``Name: value``) go to the preceding module's ``details``; DML text lines (``Browse full module list``) are ignored.
"""

from __future__ import annotations

import re

from .model import HEX_ADDRESS, ModuleEntry, parse_hex

_ROW_RE = re.compile(rf"^\s*(?P<start>{HEX_ADDRESS})\s+(?P<end>{HEX_ADDRESS})\s+(?P<name>\S+)(?:\s+(?P<rest>.*))?$")
_STATUS_RE = re.compile(r"^\((?P<status>[^)]*)\)\s*(?P<after>.*)$")
_DETAIL_RE = re.compile(r"^\s{2,}(?P<key>[A-Za-z]+(?: [A-Za-z]+)*):\s+(?P<value>.*)$")
_UNLOADED_RE = re.compile(r"^\s*Unloaded modules:\s*$", re.IGNORECASE)


def _row(m: re.Match[str], unloaded: bool) -> dict[str, object]:
    rest = (m.group("rest") or "").strip()
    status = after = None
    sm = _STATUS_RE.match(rest)
    if sm:
        status = sm.group("status").strip()
        after = sm.group("after").strip() or None
    elif rest:
        after = rest
    image_name = symbol_file = None
    if after:
        if "\\" in after or "/" in after or after.lower().endswith(".pdb"):
            symbol_file = after
        else:
            image_name = after
    return {
        "start": parse_hex(m.group("start")),
        "end": parse_hex(m.group("end")),
        "name": m.group("name"),
        "status": status,
        "image_name": image_name,
        "symbol_info": rest or None,
        "symbol_file": symbol_file,
        "unloaded": unloaded,
        "details": {},
    }


def _is_module_row(m: re.Match[str]) -> bool:
    """Rule out look-alikes such as ``dps`` rows (``addr  value nt!Sym``): no ``!`` in a module name, end >= start."""
    start, end = parse_hex(m.group("start")), parse_hex(m.group("end"))
    return "!" not in m.group("name") and start is not None and end is not None and end >= start


def parse_lm(text: str) -> list[ModuleEntry]:
    """Every module row in ``text``, in order; headers, DML lines and elisions are skipped."""
    rows: list[dict[str, object]] = []
    unloaded = False
    for line in text.splitlines():
        if _UNLOADED_RE.match(line):
            unloaded = True
            continue
        m = _ROW_RE.match(line)
        if m and _is_module_row(m):
            rows.append(_row(m, unloaded))
            continue
        d = _DETAIL_RE.match(line)
        if d and rows:
            details = rows[-1]["details"]
            assert isinstance(details, dict)
            value = d.group("value").strip()
            details.setdefault(d.group("key"), value)
            if d.group("key") == "Image name" and rows[-1]["image_name"] is None:
                rows[-1]["image_name"] = value
    return [ModuleEntry(**row) for row in rows]  # type: ignore[arg-type]
