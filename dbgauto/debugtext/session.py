"""A whole console log → command blocks → facts (banner, !analyze, .bugcheck, vertarget, lm, k).

Prompts recognised at the start of a line: ``0: kd> ``, ``12: kd> `` (two-digit CPUs), bare ``kd> ``, ``0: Kd> ``
(doc typo), local ``lkd> ``, user mode ``0:000> ``, with an effective-machine suffix (``0:000:x86> ``). A prompt
line may hold several commands joined by ``;`` (kept raw in ``command`` and split in ``commands``). When kd reads
commands from a pipe it echoes none, so its prompt is glued to the first output line (``0: kd> RAID ADAPTER``);
such a line is recognised by shape (a capital first letter or a column-aligned header) and belongs to the output.
Text before the first prompt is the banner block.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TypeVar

from .analyze import parse_analyze
from .banner import parse_banner, parse_vertarget
from .bugcheck import parse_bugcheck
from .exception import parse_exception
from .lm import parse_lm
from .model import (
    AnalyzeInfo,
    BannerInfo,
    BugcheckInfo,
    CommandBlock,
    ExceptionInfo,
    ModuleEntry,
    ParsedLog,
    StackFrame,
    VertargetInfo,
)
from .stack import parse_stack

log = logging.getLogger(__name__)
T = TypeVar("T")

_PROMPT_RE = re.compile(
    r"^(?:(?P<cpu>\d{1,4}): ?(?P<kd>l?[kK][dD])|(?P<proc>\d{1,4}):(?P<thread>\d{3,4})|(?P<bare>l?[kK][dD]))"
    r"(?::[A-Za-z0-9]+)?>"
    r"(?: (?P<rest>.*)|$)"
)
_COLUMNS_RE = re.compile(r"\S\s{3,}\S")
# fmt: off
_PLAIN_COMMANDS = frozenset({
    "a", "ba", "bc", "bd", "be", "bl", "bm", "bp", "bu", "da", "db", "dc", "dd", "df", "dp", "dps", "dq", "ds",
    "dt", "du", "dv", "dw", "dx", "e", "eb", "ed", "g", "gh", "gn", "lm", "p", "q", "qd", "r", "s", "t", "u",
    "ub", "uf", "vertarget", "version", "x",
})
# fmt: on
_K_COMMAND_RE = re.compile(r"^k[bvpPnfFcCmMLt]*(?:\s|$|=)")
_ARGUMENTS_RE = re.compile(r"^Arguments:\s*$", re.MULTILINE)
# Commands whose output holds a stack table; used only when no k command and no STACK_TEXT gave one.
_OTHER_STACK_COMMANDS = frozenset({"!thread", "!t", "!mex.t", "!crash", "!mex.crash"})
_HEADER_LINE_RE = re.compile(r"^[A-Z][A-Z0-9_]{2,} \([0-9a-fA-F]+\)\s*$", re.MULTILINE)
# Fields only !analyze prints: a text holding two of them is the tail of an !analyze output (pasted without its
# "Bugcheck Analysis" banner or prompt) and is read as such.
_TAIL_FIELD_RE = re.compile(
    r"^(?:FAILURE_BUCKET_ID|DEFAULT_BUCKET_ID|BUCKET_ID|SYMBOL_NAME|MODULE_NAME|IMAGE_NAME|FAILURE_ID_HASH"
    r"|FOLLOWUP_IP|FAULTING_IP|STACK_TEXT|BUGCHECK_CODE|BUGCHECK_STR|PROCESS_NAME):",
    re.MULTILINE,
)


def split_command_line(line: str) -> tuple[str, ...]:
    """Split one prompt line at the ``;`` that end commands.

    ``;`` does not split inside double quotes, single quotes (``j`` branches) or braces; an unclosed quote runs
    to the end of the line. ``.echo`` without a leading double quote ends at the first ``;`` whatever quotes it
    holds; ``.echo "..."`` may hold ``;``. A ``*`` comment takes the rest of the line; a ``$$`` comment ends at the
    first ``;`` whatever it holds. ``j`` keeps its ``Command1 ; Command2`` pair together.
    """
    commands: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        start = i
        word = line[i:].split(None, 1)[0].lower() if line[i:].strip() else ""
        if line[i] == "*":
            commands.append(line[start:].strip())
            break
        if word == ".echo" or word.startswith(".echo;") or line.startswith("$$", i):
            j = i + len(".echo") if line[i] == "." else i + 2
            while j < n and line[j] in " \t":
                j += 1
            if j < n and line[j] == '"' and line[i] == ".":
                close = line.find('"', j + 1)
                j = n if close < 0 else close + 1
            end = line.find(";", j)
            end = n if end < 0 else end
            commands.append(line[start:end].strip())
            i = end + 1
            continue
        semicolons_to_keep = 1 if word == "j" or (word.startswith("j(") and len(word) > 1) else 0
        quote: str | None = None
        depth = 0
        j = i
        while j < n:
            ch = line[j]
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth = max(0, depth - 1)
            elif ch == ";" and depth == 0:
                if semicolons_to_keep:
                    semicolons_to_keep -= 1
                else:
                    break
            j += 1
        text = line[start:j].strip()
        if text:
            commands.append(text)
        i = j + 1
    return tuple(commands)


def _looks_glued(rest: str) -> bool:
    """kd printed its prompt and then output (no command echoed): a capitalised word or a column header.

    Commands are case-insensitive, so a capitalised word that names a common command (``LM``, ``K``, ``Vertarget``)
    is still taken as a command.
    """
    if not rest.strip():
        return False
    if rest[:2].isspace() and _COLUMNS_RE.search(rest):
        return True
    first_word = rest.split(None, 1)[0]
    if not (first_word[0].isalpha() and first_word[0].isupper()):
        return False
    word = first_word.lower()
    return not (word in _PLAIN_COMMANDS or word.startswith("lm") or _K_COMMAND_RE.match(word))


def split_commands(text: str) -> list[CommandBlock]:
    """Cut a console log at its prompts. The first block (prompt None) is the text before the first prompt."""
    blocks: list[CommandBlock] = []
    prompt: str | None = None
    cpu: int | None = None
    mode: str | None = None
    command, line_text, glued = "", "", False
    output: list[str] = []

    def flush() -> None:
        body = "\n".join(output)
        if prompt is None and not body.strip():
            return
        commands = split_command_line(command) if command else ()
        blocks.append(CommandBlock(prompt, cpu, command, body, commands, line_text, glued, mode))

    for raw in text.splitlines():
        m = _PROMPT_RE.match(raw)
        if not m:
            output.append(raw)
            continue
        flush()
        rest = m.group("rest") or ""
        output = []
        line_text = raw
        prompt = raw[: raw.index(">") + 1]
        if m.group("kd"):
            cpu, mode = int(m.group("cpu")), "kernel"
        elif m.group("thread"):
            cpu, mode = None, "user"
        else:
            cpu, mode = None, "kernel"
        glued = _looks_glued(rest)
        if glued:
            command = ""
            output.append(rest)
        else:
            command = rest.strip()
    flush()
    return blocks


def _first_word(command: str) -> str:
    return command.split(None, 1)[0].lower() if command.strip() else ""


def _pick_analyze(blocks: list[CommandBlock]) -> CommandBlock | None:
    candidates = [b for b in blocks if any(_first_word(c) == "!analyze" for c in b.commands)]
    verbose = [b for b in candidates if any("-v" in c.split() for c in b.commands)]
    if verbose:
        return verbose[-1]
    return candidates[-1] if candidates else None


def parse_log(text: str) -> ParsedLog:
    """Every fact the parsers can read from a console log; unexpected text becomes a warning, never an exception."""
    return parse_blocks(split_commands(text))


def parse_blocks(blocks: list[CommandBlock]) -> ParsedLog:
    """Every fact in command blocks: a log split at its prompts, or an engine session's results one by one."""
    warnings: list[str] = []
    banner: BannerInfo | None = None
    analyze: AnalyzeInfo | None = None
    bugcheck: BugcheckInfo | None = None
    vertarget: VertargetInfo | None = None
    modules: list[ModuleEntry] = []
    seen_modules: set[tuple[int, int, str, bool]] = set()
    stack: list[StackFrame] = []
    other_stack: list[StackFrame] = []

    def attempt(what: str, func: Callable[[str], T], arg: str) -> T | None:
        try:
            return func(arg)
        except Exception as exc:  # a parser bug must not lose the rest of the log
            log.debug("parse of %s failed", what, exc_info=True)
            warnings.append(f"{what}: parse failed ({type(exc).__name__}: {exc})")
            return None

    head = blocks[0] if blocks and blocks[0].prompt is None else None
    if head is not None:
        info = attempt("banner", parse_banner, head.output)
        if info is not None and any(
            getattr(info, f) not in (None, (), False) for f in ("debugger_version", "dump_file", "os", "bugcheck")
        ):
            banner = info

    chosen = _pick_analyze(blocks)
    if chosen is not None:
        analyze = attempt("!analyze", parse_analyze, chosen.output)
    if analyze is None or (analyze.bugcheck_name is None and not analyze.fields):
        # An !analyze body with no prompt before it (a report tool's fragments, a pasted excerpt).
        for block in blocks:
            if block is chosen or not _HEADER_LINE_RE.search(block.output):
                continue
            if _ARGUMENTS_RE.search(block.output):
                found = attempt("!analyze (no prompt)", parse_analyze, block.output)
                if found is not None and found.bugcheck_name is not None:
                    analyze = found
                    break

    if analyze is None or (analyze.bugcheck_name is None and not analyze.fields):
        tails = [b for b in blocks if len(_TAIL_FIELD_RE.findall(b.output, 0, 1 << 20)) >= 2]
        if tails:
            found = attempt("!analyze (tail)", parse_analyze, max(tails, key=lambda b: len(b.output)).output)
            if found is not None and found.fields:
                analyze = found

    exception: ExceptionInfo | None = None  # a record with its address (.exr) wins over the event line
    for block in blocks:
        if "Exception" in block.output or " - code " in block.output:
            found_exc = attempt("exception", parse_exception, block.output)
            if found_exc is not None and (exception is None or exception.address is None):
                exception = found_exc if exception is None or found_exc.address is not None else exception
            if exception is not None and exception.address is not None:
                break

    kernel_cpus = [b.cpu for b in blocks if b.cpu is not None]
    cpu = chosen.cpu if chosen is not None and chosen.cpu is not None else (kernel_cpus[-1] if kernel_cpus else None)

    for block in blocks:
        words = [_first_word(c) for c in block.commands]
        if bugcheck is None and any(w in {".bugcheck", "!crash", "!mex.crash"} for w in words):
            bugcheck = attempt(".bugcheck", parse_bugcheck, block.output)
        if vertarget is None and any(w in {"vertarget", "!di", "!mex.di"} for w in words):
            vertarget = attempt("vertarget", parse_vertarget, block.output)
        if any(w.startswith("lm") for w in words):
            for module in attempt("lm", parse_lm, block.output) or ():
                key = (module.start, module.end, module.name, module.unloaded)
                if key not in seen_modules:
                    seen_modules.add(key)
                    modules.append(module)
        if not stack and any(_K_COMMAND_RE.match(c) for c in block.commands):
            stack = attempt("k", parse_stack, block.output) or []
        if not other_stack and any(w in _OTHER_STACK_COMMANDS for w in words):
            other_stack = attempt(words[0], parse_stack, block.output) or []
    if not stack and analyze is not None:
        stack = list(analyze.stack)
    if not stack:
        stack = other_stack
    if bugcheck is None and analyze is not None and analyze.bugcheck_code is not None:
        bugcheck = BugcheckInfo(code=analyze.bugcheck_code, parameters=analyze.parameters, source="analyze")
    if bugcheck is None and banner is not None and banner.bugcheck is not None:
        bugcheck = banner.bugcheck
    if banner is not None:
        warnings.extend(banner.warnings)
    if analyze is not None:
        warnings.extend(analyze.warnings)
    return ParsedLog(
        banner=banner,
        commands=tuple(blocks),
        analyze=analyze,
        bugcheck=bugcheck,
        vertarget=vertarget,
        modules=tuple(modules),
        stack=tuple(stack),
        warnings=tuple(warnings),
        exception=exception,
        cpu=cpu,
    )
