"""``!analyze`` / ``!analyze -v`` / ``!analyze -show`` output → AnalyzeInfo (old and new style).

Layout read: optional ``Bugcheck Analysis``/``Exception Analysis`` box, the ``NAME (code)`` header (the name and
``(code)`` may sit on separate lines after blog damage), a description, ``Arguments:`` + ``ArgN: value[, text]``,
``Debugging Details:`` (``## Debugging Details:`` in the docs), then ``FIELD:  value`` lines. Every field is kept in
order in ``fields``; a field's value continues on following lines that are not another field (TRAP_FRAME register
dumps, STACK_TEXT, KEY_VALUES_STRING, FAULTING_SOURCE_CODE...). After a one-line value a blank line ends the field
unless the next text is indented, so trailing non-debugger text (T04's invented "BugCheck Fix Tip") stays out.
"""

from __future__ import annotations

import re

from .model import AnalyzeArgument, AnalyzeInfo, ProbableCause, parse_hex
from .stack import parse_stack

_BOX_RE = re.compile(r"^\*\s+(Bugcheck|Exception) Analysis\s+\*\s*$")
_HEADER_RE = re.compile(r"^([A-Z][A-Z0-9_]{2,}) \(([0-9a-fA-F]+)\)\s*$")
_NAME_ONLY_RE = re.compile(r"^([A-Z][A-Z0-9_]{2,})\s*$")
_CODE_ONLY_RE = re.compile(r"^\s*\(([0-9a-fA-F]+)\)\s*$")
_ARGUMENTS_RE = re.compile(r"^Arguments:\s*$")
_ARG_RE = re.compile(r"^Arg(\d+): ([0-9a-fA-F`]+)(?:,(.*))?$")
_DETAILS_RE = re.compile(r"^(?:#+\s*)?Debugging Details:\s*$")
_FIELD_RE = re.compile(r"^([A-Z][A-Z0-9_]*[A-Z0-9]):(?:[ \t]+(.*))?$")
_NOT_FIELDS = frozenset({"WARNING", "ERROR", "NOTE"})
_FOLLOWUP_RE = re.compile(r"^Followup:\s*(.*?)\s*$")
_KEY_RE = re.compile(r"^\s*Key\s*:\s*(.*?)\s*$")
_VALUE_RE = re.compile(r"^\s*Value\s*:\s*(.*?)\s*$")
PROBABLY_CAUSED_BY_RE = re.compile(r"^\s*Probably caused by\s*:\s*(\S+)(?:\s*\(\s*(.*?)\s*\))?\s*$")
_BUGCHECK_STR_RE = re.compile(r"^0x([0-9a-fA-F]+)")
FAILURE_CLASSES = frozenset(
    {"memory_corruption", "pool_corruption", "hardware", "hardware_ram", "hardware_disk", "hardware_cpu"}
)
"""What ``!analyze`` names in place of a module when it blames a kind of failure ("Probably caused by :
memory_corruption"): a class of failure, never a culprit module."""


def _header(lines: list[str], stop: int) -> tuple[str | None, int | None, int]:
    """(name, code, index of the line after the header) among lines[:stop]; (None, None, 0) when absent."""
    for i in range(stop):
        line = lines[i].rstrip()
        m = _HEADER_RE.match(line)
        if m:
            return m.group(1), int(m.group(2), 16), i + 1
        m = _NAME_ONLY_RE.match(line)
        if m:
            j = i + 1
            while j < stop and not lines[j].strip():
                j += 1
            if j < stop and (c := _CODE_ONLY_RE.match(lines[j])):
                return m.group(1), int(c.group(1), 16), j + 1
    return None, None, 0


def _key_values(value: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    key: str | None = None
    for line in value.splitlines():
        if m := _KEY_RE.match(line):
            key = m.group(1)
        elif (m := _VALUE_RE.match(line)) and key is not None:
            pairs[key] = m.group(1)
            key = None
    return pairs


def _read_fields(lines: list[str], start: int) -> tuple[dict[str, str], str | None, list[str]]:
    """FIELD: value pairs from lines[start:], the Followup value, and lines that belonged to no field."""
    parts: dict[str, list[str]] = {}  # a field printed twice keeps both values, joined once at the end
    stray: list[str] = []
    followup: str | None = None
    name: str | None = None
    body: list[str] = []
    open_after_blank = True  # may the current field continue after a blank line?

    def close() -> None:
        nonlocal name, body
        if name is not None:
            while body and not body[-1].strip():
                body.pop()
            parts.setdefault(name, []).append("\n".join(body))
        name, body = None, []

    # next_text[i]: the first non-blank line at or after i ("" if none), computed once: scanning ahead from every
    # blank line made long runs of blank lines quadratic.
    next_text = [""] * (len(lines) + 1)
    for k in range(len(lines) - 1, start - 1, -1):
        next_text[k] = lines[k] if lines[k].strip() else next_text[k + 1]
    i, n = start - 1, len(lines)
    while i + 1 < n:
        i += 1
        line = lines[i]
        if not line or line.isspace():  # a blank line: most of a hostile text, so decided first and cheaply
            if name is None:
                continue
            if open_after_blank:
                body.append(line)
                continue
            nxt = next_text[i + 1]
            if nxt[:1].isspace() and not _FIELD_RE.match(nxt):
                body.append(line)
            else:
                close()
            continue
        m = _FIELD_RE.match(line) if line[:1].isupper() else None
        if m and m.group(1) not in _NOT_FIELDS:
            close()
            name = m.group(1)
            first = (m.group(2) or "").strip()
            body = [first] if first else []
            open_after_blank = not first
        elif fm := _FOLLOWUP_RE.match(line):
            close()
            followup = fm.group(1) or None
            break
        elif name is not None:
            body.append(line)
        else:
            stray.append(line)
    close()
    return {key: "\n".join(values) for key, values in parts.items()}, followup, stray


def parse_analyze(text: str) -> AnalyzeInfo:
    """Facts of one ``!analyze`` output; missing parts are None, unknown fields are kept in ``fields``."""
    lines = [line.rstrip("\r") for line in text.splitlines()]
    warnings: list[str] = []
    kind = None
    for line in lines:
        if "Analysis" in line and (m := _BOX_RE.match(line.strip())):
            kind = m.group(1).lower()
            break
    details_at = next(
        (i for i, line in enumerate(lines) if "Debugging" in line and _DETAILS_RE.match(line.strip())), None
    )
    arguments_at = next(
        (i for i, line in enumerate(lines) if "Arguments" in line and _ARGUMENTS_RE.match(line.strip())), None
    )
    header_stop = arguments_at if arguments_at is not None else (details_at if details_at is not None else len(lines))
    name, code, after_header = _header(lines, header_stop)
    description = None
    if name is not None:
        desc_lines = lines[after_header:header_stop]
        description = "\n".join(desc_lines).strip() or None
        if kind is None:
            kind = "bugcheck"

    arguments: list[AnalyzeArgument] = []
    last_arg = None
    for i, line in enumerate(lines):
        if details_at is not None and i > details_at:
            break
        m = _ARG_RE.match(line.strip()) if "Arg" in line else None
        if m:
            value = parse_hex(m.group(2))
            if value is None:
                warnings.append(f"argument line not understood: {line.strip()!r}")
                continue
            desc = (m.group(3) or "").strip() or None
            arguments.append(AnalyzeArgument(index=int(m.group(1)), value=value, description=desc))
            last_arg = i

    if details_at is not None:
        fields_from = details_at + 1
        if fields_from < len(lines) and lines[fields_from].strip().startswith("---"):
            fields_from += 1
    elif last_arg is not None:
        fields_from = last_arg + 1
    elif name is not None:
        fields_from = after_header
    else:
        fields_from = 0
    fields, followup, _stray = _read_fields(lines, fields_from)

    def get(key: str) -> str | None:
        value = fields.get(key)
        if value is None:
            return None
        return value.strip() or None

    if not arguments:
        for n in range(1, 5):
            value = parse_hex(get(f"BUGCHECK_P{n}"))
            if value is not None:
                arguments.append(AnalyzeArgument(index=n, value=value, description=None))
    if code is None:
        code = parse_hex(get("BUGCHECK_CODE"))
    bugcheck_str = get("BUGCHECK_STR")
    if code is None and bugcheck_str and kind != "exception" and (m := _BUGCHECK_STR_RE.match(bugcheck_str)):
        code = int(m.group(1), 16)

    style = None
    if "BUGCHECK_CODE" in fields or "KEY_VALUES_STRING" in fields:
        style = "new"
    elif "BUGCHECK_STR" in fields or "DEFAULT_BUCKET_ID" in fields:
        style = "old"

    probably = None
    for line in lines:
        if "Probably" in line and (m := PROBABLY_CAUSED_BY_RE.match(line)):
            probably = ProbableCause(image=m.group(1), symbol=m.group(2) or None)
            break

    stack_text = fields.get("STACK_TEXT")
    stack = tuple(parse_stack(stack_text)) if stack_text else ()
    if stack_text and not stack:
        warnings.append("STACK_TEXT present but no frame could be read")

    image, module = get("IMAGE_NAME"), get("MODULE_NAME")
    culprit = None
    failure_class = None
    for candidate in (image, module, probably.image if probably else None):
        if candidate and candidate.lower() in FAILURE_CLASSES:
            failure_class = failure_class or candidate.lower()
        elif candidate and not candidate.lower().startswith("unknown_"):
            culprit = candidate
            break
    return AnalyzeInfo(
        kind=kind,
        style=style,
        bugcheck_name=name,
        bugcheck_code=code,
        description=description,
        arguments=tuple(arguments),
        fields=fields,
        key_values=_key_values(fields.get("KEY_VALUES_STRING", "")),
        stack=stack,
        process_name=get("PROCESS_NAME"),
        module_name=module,
        image_name=image,
        symbol_name=get("SYMBOL_NAME"),
        failure_bucket_id=get("FAILURE_BUCKET_ID"),
        bucket_id=get("BUCKET_ID"),
        default_bucket_id=get("DEFAULT_BUCKET_ID"),
        bugcheck_str=bugcheck_str,
        os_version=get("OS_VERSION"),
        buildlab=get("BUILDLAB_STR"),
        followup=followup,
        probably_caused_by=probably,
        culprit=culprit,
        failure_class=failure_class,
        warnings=tuple(warnings),
    )
