"""Stack tables → StackFrame: ``k``/``kb``/``kv``/``kn``/``knL``, STACK_TEXT, x86 ``ChildEBP RetAddr Args``, MEX.

Lines are read one at a time and anything that is not a frame is skipped, so the parser can be given a whole
command output (``!process ... 7``, ``.process; .thread; kb``). Column layouts recognised:

* ``[idx] child-sp retaddr [: args : ] call-site`` — x64 ``k*``/STACK_TEXT (index hex, MEX right-aligned or not);
* ``idx retaddr : args : call-site`` — ``kb`` without the Child-SP column;
* ``childebp retaddr arg arg arg call-site`` — x86 (8-digit addresses, no colons);
* a frame whose symbol went to a later line (blog damage): the symbol line is attached when it follows;
* a frame that lost its Child-SP column inside a table: kept with ``child_sp=None``;
* inline frames (``(Inline Function) --------`--------``): ``inline=True``, no SP, return address or args.
"""

from __future__ import annotations

import re

from .model import HEX_ADDRESS, StackFrame, parse_hex

_ADDR_RE = re.compile(rf"^(?:{HEX_ADDRESS}|-{{8}}`-{{8}}|-{{8}})$")  # dashes: the empty columns of an inline frame
_INLINE_RE = re.compile(r"\(Inline(?: Function)?\)")
_INLINE_AT_RE = re.compile(r"\s*\(Inline Function @ [0-9a-fA-F`]+\)\s*$")
_INDEX_RE = re.compile(r"^\s*([0-9a-fA-F]{1,4})\s+(?=[0-9a-fA-F]{8}|-{8})")
_COLUMN_SEP_RE = re.compile(r"\s:\s")  # the " : " around "Args to Child"
_SOURCE_RE = re.compile(r"\s*\[(?P<src>(?P<file>[^\[\]]+?) @ (?P<line>\d+))\]\s*$")
_TRAP_RE = re.compile(r"\s*\(TrapFrame @ (?P<trap>" + HEX_ADDRESS + r")\)\s*$")
_MEX_SOURCE_RE = re.compile(r"^(?P<site>\S+)\s+(?P<src>(?P<file>\S.*?) @ (?P<line>\d+))\s*$")
_SITE_RE = re.compile(
    r"^(?:(?P<addr>0x[0-9a-fA-F`]+)"
    r"|(?P<module>[A-Za-z0-9_.$\-]+)(?:!(?P<function>.+?))?(?:\+(?:0x)?(?P<offset>[0-9a-fA-F]+))?)$"
)
_LONE_SITE_RE = re.compile(
    r"^\s*(?:0x[0-9a-fA-F`]+|[A-Za-z0-9_.$\-]+(?:![^\s+]+)?\+(?:0x)?[0-9a-fA-F]+|[A-Za-z0-9_.$\-]+![^\s+]+)\s*$"
)


def split_call_site(site: str) -> tuple[str | None, str | None, int | None, int | None]:
    """``"nt!KiPageFault+0x469"`` → ("nt", "KiPageFault", 0x469, None); ``"0x12e"`` → (None, None, None, 0x12e)."""
    m = _SITE_RE.match(site.strip())
    if not m:
        return None, None, None, None
    if m.group("addr"):
        return None, None, None, parse_hex(m.group("addr"))
    offset = m.group("offset")
    return m.group("module"), m.group("function"), int(offset, 16) if offset else None, None


def _frame(
    index: int | None, sp: int | None, ret: int | None, args: tuple[int, ...], site_text: str, inline: bool = False
) -> StackFrame:
    site_text = site_text.strip()
    source = source_file = None
    source_line: int | None = None
    trap: int | None = None
    m = _SOURCE_RE.search(site_text)
    if m:
        source, source_file, source_line = m.group("src"), m.group("file"), int(m.group("line"))
        site_text = site_text[: m.start()].rstrip()
    site_text = _INLINE_AT_RE.sub("", site_text)
    m = _TRAP_RE.search(site_text)
    if m:
        trap = parse_hex(m.group("trap"))
        site_text = site_text[: m.start()].rstrip()
    m = _MEX_SOURCE_RE.match(site_text)
    if m:
        source, source_file, source_line = m.group("src"), m.group("file"), int(m.group("line"))
        site_text = m.group("site")
    call_site = site_text or None
    module, function, offset, address = split_call_site(call_site) if call_site else (None, None, None, None)
    return StackFrame(
        index=index,
        child_sp=sp,
        return_address=ret,
        args=args,
        call_site=call_site,
        module=module,
        function=function,
        offset=offset,
        source=source,
        source_file=source_file,
        source_line=source_line,
        address=address,
        trap_frame=trap,
        inline=inline,
    )


def _leading_addresses(tokens: list[str]) -> int:
    n = 0
    for tok in tokens:
        if not _ADDR_RE.match(tok):
            break
        n += 1
    return n


def _parse_line(line: str, in_table: bool) -> tuple[StackFrame | None, bool]:
    """One line → (frame, needs_symbol). needs_symbol: numbers present but the call site went to a later line."""
    text = line.rstrip()
    if not text.strip():
        return None, False
    index: int | None = None
    inline = _INLINE_RE.search(text) is not None
    if inline:
        text = _INLINE_RE.sub("--------`--------", text, count=1)
    m = _INDEX_RE.match(text)
    if m:
        index = int(m.group(1), 16)
        text = text[m.end() :]
    else:
        text = text.lstrip()
    columns = _COLUMN_SEP_RE.split(text, maxsplit=2)
    if len(columns) == 3:
        left, arg_words = columns[0].split(), columns[1].split()
        if not left or len(left) > 2 or _leading_addresses(left) != len(left):
            return None, False
        if _leading_addresses(arg_words) != len(arg_words):
            return None, False
        args = () if inline else tuple(parse_hex(a) or 0 for a in arg_words)
        addrs = [parse_hex(a) for a in left]
        sp, ret = (addrs[0], addrs[1]) if len(addrs) == 2 else (None, addrs[0])
        return _frame(index, sp, ret, args, columns[2], inline), False
    tokens = text.split(None)
    n = _leading_addresses(tokens)
    if n == 0:
        return None, False
    parts = text.split(None, n)
    rest = parts[n].strip() if len(parts) > n else ""
    addrs = [parse_hex(t) for t in tokens[:n]]
    if n == 1:
        if not rest or not (in_table or index is not None) or not _site_like(rest):
            return None, False
        return _frame(index, None, addrs[0], (), rest, inline), False
    sp, ret = addrs[0], addrs[1]
    args = tuple(a or 0 for a in addrs[2:])
    if not rest:
        return (_frame(index, sp, ret, args, ""), True) if n == 5 and in_table else (None, False)
    if not _site_like(rest):
        return None, False
    return _frame(index, sp, ret, () if inline else args, rest, inline), False


def _site_like(rest: str) -> bool:
    """A call site in a stack table is ``module!function``, ``module+offset`` or ``0xaddress`` — never a bare word
    (that is disassembly such as ``mov``, a ``dv`` type or a wait-object name)."""
    first = rest.split(None, 1)[0]
    if not _SITE_RE.match(first):
        return False
    return "!" in first or "+" in first or first.startswith("0x")


def parse_stack(text: str) -> list[StackFrame]:
    """Every stack frame in ``text``, in order; unrelated lines are skipped, nothing raises."""
    frames: list[StackFrame] = []
    pending: StackFrame | None = None
    in_table = False
    for line in text.splitlines():
        if pending is not None:
            if not line.strip():
                continue
            if _LONE_SITE_RE.match(line):
                frames.append(_frame(pending.index, pending.child_sp, pending.return_address, pending.args, line))
                pending = None
                in_table = True
                continue
            pending = None  # the symbol never came: not a frame after all (e.g. a dd row)
        lowered = line.strip().lower()
        if "call site" in lowered or lowered.startswith(("childebp", "child-sp")) or lowered in {"stack_text:"}:
            in_table = True
            continue
        frame, needs_symbol = _parse_line(line, in_table)
        if frame is None:
            if lowered in {"...", "…"} or lowered.startswith(("warning: stack unwind", "*** stack trace")):
                continue
            in_table = False
            continue
        if needs_symbol:
            pending = frame
            continue
        frames.append(frame)
        in_table = True
    return frames
