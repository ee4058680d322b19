"""Typed facts read from debugger console text, and the small helpers every parser shares.

Every result is a frozen, slotted dataclass with ``to_dict()`` (JSON-ready: ints stay ints, datetimes become ISO
strings, tuples become lists). Addresses are ints: the debugger's backtick separator (``fffff800`62a08bb5``) and an
optional ``0x`` are removed before conversion, and 8-digit 32-bit addresses are read the same way.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

HEX_ADDRESS = r"(?:[0-9a-fA-F]{8}`[0-9a-fA-F]{8}|[0-9a-fA-F]{8,16})"
"""An address as the debugger prints it in tables: 64-bit with or without the backtick, or 8-digit 32-bit."""

_HEX_RE = re.compile(r"^(?:0x)?([0-9a-fA-F`]+)h?$")


def parse_hex(text: str | None) -> int | None:
    """``"fffff800`62a08bb5"``, ``"0x804d7000"``, ``"c0000005"`` → int; anything else → None."""
    if text is None:
        return None
    m = _HEX_RE.match(text.strip())
    if not m:
        return None
    digits = m.group(1).replace("`", "")
    if not digits:
        return None
    return int(digits, 16)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class _ToDict:
    """Mixin: ``to_dict()`` over the dataclass fields, recursively JSON-ready."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class CommandBlock(_ToDict):
    """One prompt and what the debugger printed after it, up to the next prompt.

    ``prompt`` is None for the text before the first prompt (the open banner). ``command`` is the raw command text
    of the prompt line (trailing blanks removed); ``commands`` the same line split at top-level ``;``. ``glued`` is
    True when kd printed no command and its prompt sits in front of the first output line (commands read from a
    pipe); that text then belongs to ``output`` and ``command`` is empty.
    """

    prompt: str | None
    cpu: int | None
    command: str
    output: str
    commands: tuple[str, ...] = ()
    line: str = ""
    glued: bool = False
    mode: str | None = None  # "kernel" (N: kd>, kd>) or "user" (0:000>)


@dataclass(frozen=True, slots=True)
class OsInfo(_ToDict):
    """The ``Windows 10 Kernel Version 19041 MP (3 procs) Free x64`` line.

    ``name_reliable`` is False when the name cannot be right for the build: old debuggers name the OS from a table
    that ends before the build (6.12 prints "Windows 7 Kernel Version 22621"); the build number comes from the
    target and stays trustworthy.
    """

    raw: str
    name: str | None
    build: int | None
    service_pack: str | None
    multiprocessor: bool | None
    processors: int | None
    free: bool | None
    arch: str | None
    name_reliable: bool


@dataclass(frozen=True, slots=True)
class BugcheckInfo(_ToDict):
    code: int | None
    parameters: tuple[int, ...]
    source: str | None = None  # "bugcheck" (.bugcheck / MEX !crash), "mex" (Bugcheck: 19 (...)), "summary"


@dataclass(frozen=True, slots=True)
class ProbableCause(_ToDict):
    """``Probably caused by : psseckbd.sys ( mydriver+199e )`` — image and symbol exactly as printed."""

    image: str
    symbol: str | None


@dataclass(frozen=True, slots=True)
class SystemLines(_ToDict):
    """The system lines the open banner and ``vertarget`` share (OS line, product, build lab, bases, times)."""

    os: OsInfo | None = None
    product: str | None = None
    suite: tuple[str, ...] = ()
    built_by: str | None = None
    edition_build_lab: str | None = None
    machine_name: str | None = None
    kernel_base: int | None = None
    ps_loaded_module_list: int | None = None
    debug_session_time: datetime | None = None
    debug_session_time_raw: str | None = None
    uptime_seconds: float | None = None
    uptime_raw: str | None = None

    @property
    def os_name(self) -> str | None:
        return self.os.name if self.os else None

    @property
    def build(self) -> int | None:
        return self.os.build if self.os else None

    @property
    def processors(self) -> int | None:
        return self.os.processors if self.os else None

    @property
    def arch(self) -> str | None:
        return self.os.arch if self.os else None

    @property
    def build_lab(self) -> str | None:
        return self.edition_build_lab or self.built_by


@dataclass(frozen=True, slots=True)
class BannerInfo(SystemLines):
    debugger_version: str | None = None
    debugger_arch: str | None = None
    dump_file: str | None = None
    dump_kind: str | None = None  # "Kernel Bitmap Dump File"
    dump_kind_line: str | None = None  # the whole line
    dump_variety: str | None = None  # "small" | "kernel" | "complete" | "user" | None
    truncated: bool = False
    symbol_path: str | None = None
    executable_path: str | None = None
    bugcheck: BugcheckInfo | None = None
    probably_caused_by: ProbableCause | None = None
    followup: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VertargetInfo(SystemLines):
    """``vertarget`` (and the same lines printed by MEX ``!di`` / ``!crash``); unknown ``Key: value`` lines in extra."""

    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModuleEntry(_ToDict):
    """One ``lm`` row. ``symbol_info`` is the status text and anything after it (``(pdb symbols)  c:\\x.pdb``)."""

    start: int
    end: int
    name: str
    status: str | None = None  # "deferred", "no symbols", "export symbols", "private pdb symbols", ...
    image_name: str | None = None
    symbol_info: str | None = None
    symbol_file: str | None = None
    unloaded: bool = False
    details: dict[str, str] = field(default_factory=dict)  # lmv lines: "Image path", "Timestamp", ...


@dataclass(frozen=True, slots=True)
class StackFrame(_ToDict):
    """One frame of ``k*``, STACK_TEXT, x86 ``ChildEBP RetAddr Args`` or MEX thread tables.

    ``call_site`` is the symbol text as printed (``nt!KiPageFault+0x469``, ``myfault+0x1981``, ``0x12e``);
    ``module``/``function``/``offset`` are read from it; ``address`` is set when the call site is a bare address.
    """

    index: int | None
    child_sp: int | None
    return_address: int | None
    args: tuple[int, ...]
    call_site: str | None
    module: str | None
    function: str | None
    offset: int | None
    source: str | None = None  # "C:\\...\\Driver.c @ 11"
    source_file: str | None = None
    source_line: int | None = None
    address: int | None = None
    trap_frame: int | None = None
    inline: bool = False


@dataclass(frozen=True, slots=True)
class AnalyzeArgument(_ToDict):
    index: int
    value: int
    description: str | None


@dataclass(frozen=True, slots=True)
class AnalyzeInfo(_ToDict):
    kind: str | None = None  # "bugcheck" | "exception" (banner "Bugcheck Analysis" / "Exception Analysis")
    style: str | None = None  # "new" (BUGCHECK_CODE / KEY_VALUES_STRING) | "old" (BUGCHECK_STR / DEFAULT_BUCKET_ID)
    bugcheck_name: str | None = None
    bugcheck_code: int | None = None
    description: str | None = None
    arguments: tuple[AnalyzeArgument, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)
    key_values: dict[str, str] = field(default_factory=dict)
    stack: tuple[StackFrame, ...] = ()
    process_name: str | None = None
    module_name: str | None = None
    image_name: str | None = None
    symbol_name: str | None = None
    failure_bucket_id: str | None = None
    bucket_id: str | None = None
    default_bucket_id: str | None = None
    bugcheck_str: str | None = None
    os_version: str | None = None
    buildlab: str | None = None
    followup: str | None = None
    probably_caused_by: ProbableCause | None = None
    culprit: str | None = None
    failure_class: str | None = None  # memory_corruption, hardware, ... (named instead of a module)
    warnings: tuple[str, ...] = ()

    @property
    def parameters(self) -> tuple[int, ...]:
        return tuple(a.value for a in self.arguments)


@dataclass(frozen=True, slots=True)
class ExceptionInfo(_ToDict):
    """An exception record as cdb/WinDbg print it: the first/second-chance line or ``.exr`` output."""

    code: int | None
    address: int | None = None
    description: str | None = None  # "Access violation"
    chance: str | None = None  # "first" | "second"


@dataclass(frozen=True, slots=True)
class ParsedLog(_ToDict):
    banner: BannerInfo | None
    commands: tuple[CommandBlock, ...]
    analyze: AnalyzeInfo | None
    bugcheck: BugcheckInfo | None
    vertarget: VertargetInfo | None
    modules: tuple[ModuleEntry, ...]
    stack: tuple[StackFrame, ...]
    warnings: tuple[str, ...]
    exception: ExceptionInfo | None = None
    cpu: int | None = None  # the processor of the !analyze prompt (``13: kd>``), else of the last kernel prompt
