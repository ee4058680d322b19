"""Text of the native engine's answers, laid out as cdb/kd lays out the same commands.

Pure formatting: every function takes a :class:`Target` (facts already read from the dump) and returns the
text the debugger would print, so that parsers written for real debugger output read ours too. Where the
native engine knows less than the debugger (no symbols, a stack *scan* instead of an unwound stack) the
output says so in lines starting with ``***``, as the debugger does for its own warnings.
"""

from __future__ import annotations

import fnmatch
import ntpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from dbgauto.analysis.naming import location_text
from dbgauto.kdump.constants import Machine
from dbgauto.unwind.trapframe import KTRAP_FRAME_X64, read_ktrap_frame
from dbgauto.vocab.bugchecks import lookup as bugcheck_info
from dbgauto.vocab.dumptypes import dump_kind_line
from dbgauto.vocab.fmt import addr_text as format_addr
from dbgauto.vocab.fmt import uptime_text
from dbgauto.vocab.machines import MACHINES, machine_arch_text
from dbgauto.vocab.modules import module_short_name
from dbgauto.vocab.products import product_type_nt_name, suite_names

if TYPE_CHECKING:
    from dbgauto.analysis.facts import CrashFacts, CulpritFact

__all__ = [
    "Module",
    "ScanFrame",
    "Target",
    "analyze",
    "analyze_summary",
    "banner_text",
    "bugcheck",
    "dump_kind_line",
    "format_addr",
    "lm",
    "module_short_name",
    "registers",
    "stack",
    "vertarget",
]

NO_SYMBOLS_NOTE: Final = (
    "*** The native engine has no symbols: code addresses are shown as module+offset from the dump's driver list.\n"
    "*** For symbols and the full command set, install Debugging Tools for Windows and use --engine cdb or dbgeng."
)

_OS_BY_BUILD: Final = ((10240, "Windows 10"), (9600, "Windows 8.1"), (9200, "Windows 8"), (7600, "Windows 7"))
_OS_BY_BUILD_OLD: Final = ((6000, "Windows Vista"), (3790, "Windows Server 2003"), (2600, "Windows XP"))


@dataclass(frozen=True, slots=True)
class Module:
    """A loaded driver as ``lm`` shows it."""

    path: str  # full NT path as the dump records it
    base: int
    size: int
    timestamp: int | None = None
    checksum: int | None = None

    @property
    def image_name(self) -> str:
        return ntpath.basename(self.path)

    @property
    def name(self) -> str:
        return module_short_name(self.path)

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True, slots=True)
class ScanFrame:
    """A stack slot whose value points into a module (not an unwound frame)."""

    address: int
    value: int
    module: str | None
    offset: int | None


@dataclass(slots=True)
class Target:
    """What the native engine knows about an open dump, gathered once from the format layer."""

    path: Path
    dump_type: int | None
    is_64bit: bool
    machine: int | None
    major_version: int | None
    build: int | None
    number_processors: int | None
    product_type: int | None
    suite_mask: int | None
    kernel_base: int | None
    ps_loaded_module_list: int | None
    system_time: datetime | None
    uptime_100ns: int | None
    bugcheck_code: int | None
    bugcheck_parameters: tuple[int, int, int, int]
    registers: dict[str, int] | None
    pc: int | None
    sp: int | None
    modules: list[Module] = field(default_factory=list)
    unloaded: list[tuple[str, int, int]] = field(default_factory=list)
    process_name: str | None = None
    pid: int | None = None
    tid: int | None = None
    crash_cpu: int | None = None
    modules_known: bool = True  # False: the dump holds no driver list we could read
    scan: Callable[[], Sequence[ScanFrame]] | None = None  # lazy stack scan
    verdict: Callable[[], CrashFacts] | None = None  # lazy facts (unwound stack, culprit, bucket) of the session
    notes: list[str] = field(default_factory=list)
    namer: Callable[[int], str | None] | None = None  # symbol names (``nt!Function+0xoff``) once a table is known
    symbols_line: str | None = None  # which table and how, shown where the output says "no symbols"
    symbol_search_path: str | None = None  # as the banner shows it
    read: Callable[[int, int], bytes | None] | None = None  # target virtual memory (kv's arguments, .trap's registers)

    def module_at(self, address: int) -> Module | None:
        for m in self.modules:
            if m.base <= address < m.end:
                return m
        return None

    def symbolize(self, address: int) -> str:
        """``module!Function+0xoff`` with symbols, ``module+0xoffset`` without; the bare address otherwise."""
        if self.namer is not None:
            name = self.namer(address)
            if name is not None:
                return name
        m = self.module_at(address)
        if m is None:
            return format_addr(address, self.is_64bit)
        return f"{m.name}+{address - m.base:#x}"


def _hex_plain(value: int, is_64bit: bool) -> str:
    return f"{value & 0xFFFFFFFFFFFFFFFF:016x}" if is_64bit else f"{value & 0xFFFFFFFF:08x}"


def os_name(build: int | None) -> str:
    if build is None:
        return "Windows"
    for floor, name in (*_OS_BY_BUILD, *_OS_BY_BUILD_OLD):
        if build >= floor:
            return name
    return "Windows 2000" if build >= 2195 else "Windows NT"


def os_line(t: Target) -> str:
    mp = "MP" if (t.number_processors or 1) > 1 else "UP"
    procs = t.number_processors if t.number_processors is not None else "?"
    kind = "Checked" if t.major_version == 0xC else "Free"
    arch = machine_arch_text(t.machine)
    build = t.build if t.build is not None else "?"
    return f"{os_name(t.build)} Kernel Version {build} {mp} ({procs} procs) {kind} {arch}"


def product_line(t: Target) -> str:
    product = product_type_nt_name(t.product_type) or (f"{t.product_type}" if t.product_type is not None else "unknown")
    suites = " ".join(suite_names(t.suite_mask))
    return f"Product: {product}, suite: {suites}".rstrip()


def _bases_line(t: Target) -> str:
    kb = f"0x{format_addr(t.kernel_base, t.is_64bit)}" if t.kernel_base is not None else "(unknown)"
    pl = f"0x{format_addr(t.ps_loaded_module_list, t.is_64bit)}" if t.ps_loaded_module_list is not None else "(unknown)"
    return f"Kernel base = {kb} PsLoadedModuleList = {pl}"


def session_time(value: datetime | None) -> str:
    """``Sun Feb 21 01:38:22.987 2021 (UTC + 0:00)``: the debugger's layout, always in UTC here."""
    if value is None:
        return "(not recorded in the dump)"
    v = value.astimezone(UTC)
    return f"{v:%a %b} {v.day:2d} {v:%H:%M:%S}.{v.microsecond // 1000:03d} {v.year} (UTC + 0:00)"


def uptime(raw_100ns: int | None) -> str:
    return "(not recorded in the dump)" if raw_100ns is None else uptime_text(raw_100ns)


def vertarget(t: Target) -> str:
    lines = [
        os_line(t),
        product_line(t),
        _bases_line(t),
        f"Debug session time: {session_time(t.system_time)}",
        f"System Uptime: {uptime(t.uptime_100ns)}",
    ]
    return "\n".join(lines) + "\n"


def banner_text(t: Target, *, version: str) -> str:
    """What ``dbgauto shell`` prints on start, shaped like cdb's banner when it opens a dump."""
    lines = [
        f"dbgauto Native Debugger Version {version} (pure Python, no symbols)",
        "",
        f"Loading Dump File [{t.path}]",
        dump_kind_line(t.dump_type),
        "",
        f"Symbol search path is: {t.symbol_search_path or '(none: the native engine does not load symbols)'}",
        "Executable search path is: ",
        vertarget(t).rstrip("\n"),
    ]
    lines.extend(f"*** {note}" for note in t.notes)
    if t.bugcheck_code is not None:
        lines += ["", analyze_summary(t).rstrip("\n")]
    return "\n".join(lines) + "\n"


def bugcheck(t: Target) -> str:
    if t.bugcheck_code is None:
        return "Bugcheck code (none recorded in the dump)\n"
    args = " ".join(format_addr(p, t.is_64bit) for p in t.bugcheck_parameters)
    return f"Bugcheck code {t.bugcheck_code:08X}\nArguments {args}\n"


def _lm_row(t: Target, m: Module, status: str) -> str:
    name = f"{m.name:<10} " if len(m.name) <= 10 else f"{m.name}   "
    return f"{format_addr(m.base, t.is_64bit)} {format_addr(m.end, t.is_64bit)}   {name}{status}"


def _lm_header(t: Target) -> str:
    return "start             end                 module name" if t.is_64bit else "start    end        module name"


def _timestamp_text(ts: int | None) -> str:
    if ts is None:
        return "(unknown)"
    year_now = datetime.now(UTC).year
    try:
        when = datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        when = None
    if when is None or not 1995 <= when.year <= year_now + 1:
        return f"{ts:08X} (This is a reproducible build file hash, not a timestamp)"
    return f"{when:%a %b} {when.day:2d} {when:%H:%M:%S %Y} ({ts:08X})"


def lm(t: Target, args: str = "") -> str:
    """``lm``, ``lm k``, ``lm m PATTERN``, ``lmv``, ``lmvm NAME``: modules sorted by base, no symbols."""
    verbose, pattern = _lm_options(args)
    if not t.modules_known:
        return f"{_lm_header(t)}\n*** The native engine found no driver list in this dump.\n"
    rows = [_lm_header(t)]
    selected = [m for m in sorted(t.modules, key=lambda m: m.base) if _matches(m, pattern)]
    for m in selected:
        rows.append(_lm_row(t, m, "(no symbols)           "))
        if verbose:
            rows += [
                f"    Image path: {m.path}",
                f"    Image name: {m.image_name}",
                f"    Timestamp:        {_timestamp_text(m.timestamp)}",
                f"    CheckSum:         {m.checksum:08X}"
                if m.checksum is not None
                else "    CheckSum:         (unknown)",
                f"    ImageSize:        {m.size:08X}",
            ]
    unloaded = [u for u in t.unloaded if pattern is None or fnmatch.fnmatch(u[0].lower(), pattern)]
    if unloaded and pattern is None:
        rows += ["", "Unloaded modules:"]
        rows += [f"{format_addr(s, t.is_64bit)} {format_addr(e, t.is_64bit)}   {n}" for n, s, e in unloaded]
    return "\n".join(rows) + "\n"


def _lm_options(args: str) -> tuple[bool, str | None]:
    """Parse the ``lm`` option letters that matter here: ``v`` (verbose) and ``m PATTERN`` / ``vm PATTERN``."""
    words = args.split()
    verbose = False
    pattern = None
    i = 0
    while i < len(words):
        word = words[i].lower()
        if set(word) <= set("vkmuosnfitlc"):
            verbose = verbose or "v" in word
            if word.endswith("m") and i + 1 < len(words):
                pattern = words[i + 1].lower()
                i += 1
        i += 1
    return verbose, pattern


def _matches(m: Module, pattern: str | None) -> bool:
    if pattern is None:
        return True
    return fnmatch.fnmatch(m.name.lower(), pattern) or fnmatch.fnmatch(m.image_name.lower(), pattern)


def _flags(efl: int) -> str:
    bits = (
        (11, "ov", "nv"),
        (10, "dn", "up"),
        (9, "ei", "di"),
        (7, "ng", "pl"),
        (6, "zr", "nz"),
        (4, "ac", "na"),
        (2, "po", "pe"),  # as the debugger prints it: "po" when PF is set (every transcript agrees)
        (0, "cy", "nc"),
    )
    names = " ".join(on if efl >> bit & 1 else off for bit, on, off in bits)
    return f"iopl={efl >> 12 & 3:<10d}{names}"


_AMD64_ROWS: Final = (
    ("rax", "rbx", "rcx"),
    ("rdx", "rsi", "rdi"),
    ("rip", "rsp", "rbp"),
    ("r8", "r9", "r10"),
    ("r11", "r12", "r13"),
    ("r14", "r15"),
)


def registers(t: Target, args: str = "") -> str:
    """``r`` (the crash context, cdb layout) or ``r rax,rip`` (named registers)."""
    regs = t.registers
    if regs is None:
        return "*** The dump holds no register context.\n"
    wanted = [w.strip().lower().lstrip("@") for w in args.replace(",", " ").split() if w.strip()]
    if wanted:
        width = 16 if t.is_64bit else 8
        out = []
        for name in wanted:
            if name not in regs:
                raise KeyError(name)
            out.append(f"{name}={regs[name]:0{width}x}")
        return "\n".join(out) + "\n"
    if t.machine == Machine.AMD64:
        lines = [" ".join(f"{n:>3}={regs.get(n, 0):016x}" for n in row) for row in _AMD64_ROWS]
        lines.append(_flags(regs.get("efl", 0)))
        segs = "  ".join(f"{s}={regs.get(s, 0):04x}" for s in ("cs", "ss", "ds", "es", "fs", "gs"))
        lines.append(f"{segs}             efl={regs.get('efl', 0):08x}")
    elif t.machine == Machine.I386:
        lines = [
            " ".join(f"{n}={regs.get(n, 0):08x}" for n in ("eax", "ebx", "ecx", "edx", "esi", "edi")),
            " ".join(f"{n}={regs.get(n, 0):08x}" for n in ("eip", "esp", "ebp")) + " " + _flags(regs.get("efl", 0)),
        ]
        segs = "  ".join(f"{s}={regs.get(s, 0) & 0xFFFF:04x}" for s in ("cs", "ss", "ds", "es", "fs", "gs"))
        lines.append(f"{segs}             efl={regs.get('efl', 0):08x}")
    else:
        names = [f"x{i}" for i in range(29)] + ["fp", "lr", "sp", "pc"]
        lines = [" ".join(f"{n:>3}={regs.get(n, 0):016x}" for n in names[i : i + 3]) for i in range(0, len(names), 3)]
        lines.append(f"cpsr={regs.get('cpsr', 0):08x}")
    if t.pc is not None:
        lines += [f"{t.symbolize(t.pc)}:", f"{format_addr(t.pc, t.is_64bit)} ??              (no disassembly)"]
    return "\n".join(lines) + "\n"


def _stack_rows(t: Target, limit: int) -> list[tuple[int, int, str]]:
    rows: list[tuple[int, int, str]] = []
    if t.pc is not None:
        rows.append((t.sp or 0, t.pc, t.symbolize(t.pc)))
    frames = t.scan() if t.scan is not None else []
    for f in frames:
        if len(rows) >= limit:
            break
        if t.namer is None and f.module and f.offset is not None:
            site = f"{f.module}+{f.offset:#x}"
        else:
            site = t.symbolize(f.value)
        rows.append((f.address, f.value, site))
    return rows


STACK_SCAN_NOTE: Final = (
    "  *** Stack scan without symbols (dbgauto native engine): not an unwound call stack.\n"
    "  *** Frame 00 is the crash context (rsp/rip); later rows are stack slots whose value points into a module,\n"
    "  *** newest first. Install Debugging Tools for Windows (--engine cdb or dbgeng) for a real stack."
)


def stack_note(t: Target) -> str:
    """The scan's label: without symbols, or with the identified table named."""
    if t.namer is None:
        return STACK_SCAN_NOTE
    return (
        f"  *** Stack scan with symbols ({t.symbols_line}): not an unwound call stack.\n"
        "  *** Frame 00 is the crash context (rsp/rip); later rows are stack slots whose value points into a module,\n"
        "  *** newest first. Install Debugging Tools for Windows (--engine cdb or dbgeng) for a real stack."
    )


KV_HEAD: Final = (
    " # Child-SP          RetAddr               : Args to Child"
    "                                                           : Call Site"
)


def _qword(t: Target, va: int) -> int | None:
    if t.read is None:
        return None
    try:
        raw = t.read(va, 8)
    except Exception:  # unreadable memory is shown as the debugger shows it
        return None
    return int.from_bytes(raw[:8], "little") if raw is not None and len(raw) >= 8 else None


K_HEAD: Final = " # Child-SP          RetAddr               Call Site"


def _unwound(t: Target, limit: int, *, verbose: bool) -> str | None:
    """The unwound stack laid out as WinDbg's: ``k`` (index, Child-SP, RetAddr, call site) or, ``verbose``, ``kv``
    (transcript T01: the four home slots above Child-SP as "Args to Child", and ``(TrapFrame @ ADDR)`` on a trap
    handler's frame, which plain ``k`` never shows — transcript D01). None when the session has no unwound stack, or
    one that ends at the crash context (the scan is shown instead)."""
    if t.verdict is None or not t.is_64bit:
        return None
    f = t.verdict()
    if f.stack is None or f.stack.kind != "unwound":
        return None
    frames = f.unwound_frames[:limit]
    if len(f.unwound_frames) < 2:
        return None  # the unwind stopped at the crash context (no unwind data for its module): the scan says more
    syms = "without symbols" if t.namer is None else f"with symbols ({t.symbols_line})"
    out = [f"  *** Unwound stack {syms} (dbgauto native engine); scan-only frames are left out."]
    out.append(KV_HEAD if verbose else K_HEAD)
    for i, fr in enumerate(frames):
        ret = frames[i + 1].value if i + 1 < len(frames) else 0
        sp = fr.address or 0
        site = fr.symbol or location_text(fr.module, fr.function, fr.offset) or format_addr(fr.value or 0, True)
        if not verbose:
            out.append(f"{i:02x} {format_addr(sp, True)} {format_addr(ret or 0, True)}     {site}")
            continue
        words = [_qword(t, sp + 8 * k) for k in range(1, 5)]
        args = " ".join("????????`????????" if w is None else format_addr(w, True) for w in words)
        if fr.trap_frame_at is not None:
            site += f" (TrapFrame @ {format_addr(fr.trap_frame_at, True)})"
        out.append(f"{i:02x} {format_addr(sp, True)} {format_addr(ret or 0, True)}     : {args} : {site}")
    return "\n".join(out) + "\n"


def stack(t: Target, args: str = "", verb: str = "k") -> str:
    """``k``/``kv`` of the unwound stack when there is one (:func:`_unwound`), else rows shaped like ``k`` from the
    stack scan, labelled a scan."""
    limit = 256
    for word in args.split():
        if word.isdigit():
            limit = max(1, int(word))
    text = _unwound(t, limit, verbose=verb.lower().startswith("kv"))
    if text is not None:
        return text
    rows = _stack_rows(t, limit)
    if not rows:
        return f"{stack_note(t)}\n*** No stack data in this dump.\n"
    head = " # Child-SP          RetAddr           Call Site" if t.is_64bit else " # ChildEBP RetAddr  Call Site"
    out = [stack_note(t), head]
    out += [
        f"{i:02x} {format_addr(a, t.is_64bit)} {format_addr(v, t.is_64bit)} {site}"
        for i, (a, v, site) in enumerate(rows)
    ]
    return "\n".join(out) + "\n"


_BOX: Final = (
    "*******************************************************************************\n"
    "*                                                                             *\n"
    "*                        Bugcheck Analysis                                    *\n"
    "*                                                                             *\n"
    "*******************************************************************************\n"
)


def _culprit(t: Target) -> CulpritFact | None:
    """The probable culprit of the session's facts (:func:`dbgauto.analysis.culprit.find_culprit`)."""
    if t.verdict is not None:
        return t.verdict().culprit
    from dbgauto.analysis.culprit import find_culprit
    from dbgauto.analysis.facts import DriverFact

    values = [f.value for f in (t.scan() if t.scan is not None else [])]
    drivers = [
        DriverFact(name=m.image_name, path=m.path, base=m.base, size=m.size, timestamp=m.timestamp, checksum=m.checksum)
        for m in t.modules
    ]
    return find_culprit(
        pc=t.pc,
        bugcheck_code=t.bugcheck_code,
        bugcheck_parameters=t.bugcheck_parameters,
        drivers=drivers,
        stack_values=values,
    )


def _unwound_rows(t: Target, show_scan: bool = False) -> list[tuple[int, int, str, str]] | None:
    """(Child-SP, RetAddr, call site, trust) of the facts' unwound stack; None when the session has no facts."""
    if t.verdict is None:
        return None
    f = t.verdict()
    if f.stack is None or f.stack.kind != "unwound":
        return None
    frames = f.stack.frames if show_scan else f.unwound_frames
    rows = []
    for i, fr in enumerate(frames):
        nxt = frames[i + 1].value if i + 1 < len(frames) else 0
        site = fr.symbol or location_text(fr.module, fr.function, fr.offset) or format_addr(fr.value or 0, t.is_64bit)
        rows.append((fr.address or 0, nxt or 0, site, fr.trust or ""))
    return rows


def _trap_frame_field(t: Target, facts: CrashFacts | None) -> list[str]:
    """``TRAP_FRAME:  ADDR -- (.trap 0xADDR)`` and the registers it saved, as ``!analyze -v`` prints the faulting
    trap frame (transcripts T01, T07, T08); registers a _KTRAP_FRAME does not hold show as zero, as there."""
    raw = facts.experimental.get("trap_frame") if facts is not None else None
    if not raw or t.machine != Machine.AMD64:
        return []
    va = int(str(raw), 16)
    plain = f"{va:016x}"
    head = f"TRAP_FRAME:  {plain} -- (.trap 0x{plain})"
    regs = read_ktrap_frame(t.read, va, KTRAP_FRAME_X64) if t.read is not None else None
    if regs is None:
        return [head, f"Unable to read trap frame at {format_addr(va, True)}", "Resetting default scope", ""]
    lines = [
        head,
        "NOTE: The trap frame does not contain all registers.",
        "Some register values may be zeroed or incorrect.",
    ]
    lines += [" ".join(f"{n:>3}={regs.get(n, 0):016x}" for n in row) for row in _AMD64_ROWS]
    lines.append(_flags(regs.get("eflags", 0)))
    lines += [f"{t.symbolize(regs['rip'])}:", f"{format_addr(regs['rip'], True)} ??              (no disassembly)"]
    return [*lines, "Resetting default scope", ""]


def _culprit_names(c: CulpritFact) -> tuple[str, str, str]:
    """(image name, module name, "module+offset") of a culprit; its name is already the image's file name."""
    short = module_short_name(c.name)
    site = f"{short}+{c.offset:x}" if c.offset is not None else short
    return c.name, short, site


def analyze_summary(t: Target) -> str:
    """The short box the debugger prints on open and for ``!analyze`` without ``-v``."""
    if t.bugcheck_code is None:
        return _BOX + "\nNo bug check recorded in the dump.\n"
    params = ", ".join(f"{p & 0xFFFFFFFFFFFFFFFF:x}" for p in t.bugcheck_parameters)
    lines = [
        _BOX,
        "Use !analyze -v to get detailed debugging information.",
        "",
        f"BugCheck {t.bugcheck_code:X}, {{{params}}}",
        "",
    ]
    c = _culprit(t)
    if c is not None:
        image, _short, site = _culprit_names(c)
        lines += [f"Probably caused by : {image} ( {site} )", ""]
    lines += ["Followup:     MachineOwner", "---------"]
    return "\n".join(lines) + "\n"


def analyze(t: Target) -> str:
    """``!analyze -v`` without symbols: name, parameters with meaning, culprit, process, scanned stack."""
    if t.bugcheck_code is None:
        return _BOX + "\nNo bug check recorded in the dump.\n"
    info = bugcheck_info(t.bugcheck_code)
    meanings = info.parameters if info else (None, None, None, None)
    out = [_BOX, f"{info.name if info else 'UNKNOWN_BUGCHECK_CODE'} ({t.bugcheck_code:x})"]
    if info and info.summary:
        out.append(info.summary)
    out.append("Arguments:")
    out += [
        f"Arg{i + 1}: {_hex_plain(v or 0, t.is_64bit)}, {(meanings[i] if i < 4 else None) or ''}".rstrip(" ")
        for i, v in enumerate(t.bugcheck_parameters)
    ]
    note = NO_SYMBOLS_NOTE if t.namer is None else f"*** Symbols: {t.symbols_line}"
    out += ["", "Debugging Details:", "------------------", "", note, ""]
    out += [f"BUGCHECK_CODE:  {t.bugcheck_code:x}", ""]
    out += [
        s for i, p in enumerate(t.bugcheck_parameters) for s in (f"BUGCHECK_P{i + 1}: {p & 0xFFFFFFFFFFFFFFFF:x}", "")
    ]
    facts = t.verdict() if t.verdict is not None else None
    if facts is not None and facts.current_irql is not None:
        out += [f"CURRENT_IRQL:  {facts.current_irql:x}", ""]
    if t.crash_cpu is not None:
        out += [f"FAULTING_PROCESSOR:  {t.crash_cpu}", ""]
    if t.process_name:
        out += [f"PROCESS_NAME:  {t.process_name}", ""]
    if t.pid is not None:
        out += [f"PROCESS_ID:  {t.pid:x}", ""]
    if t.tid is not None:
        out += [f"THREAD_ID:  {t.tid:x}", ""]
    if t.pc is not None:
        out += ["FAULTING_IP: ", f"{t.symbolize(t.pc)}", f"{format_addr(t.pc, t.is_64bit)} ??", ""]
    out += _trap_frame_field(t, facts)
    unwound = _unwound_rows(t)
    if unwound:
        out.append("STACK_TEXT:  ")
        out += [f"{format_addr(a, t.is_64bit)} {format_addr(v, t.is_64bit)} {site}" for a, v, site, _ in unwound]
        folded = len(facts.stack.frames) - len(unwound) if facts is not None and facts.stack is not None else 0
        how = ", ".join(dict.fromkeys(trust for *_, trust in unwound))
        note = f"; {folded} scan frames folded" if folded else ""
        syms = "without symbols" if t.namer is None else "with symbols"
        out += ["", f"STACK_COMMAND:  k (unwound {syms}: {how}{note})", ""]
    else:
        rows = _stack_rows(t, 64)
        if rows:
            out.append("STACK_TEXT:  ")
            out += [f"{format_addr(a, t.is_64bit)} {format_addr(v, t.is_64bit)} {site}" for a, v, site in rows]
            how = "without symbols" if t.namer is None else "with symbols"
            out += ["", f"STACK_COMMAND:  k (stack scan {how})", ""]
    c = _culprit(t)
    if c is not None:
        image, short, site = _culprit_names(c)
        symbol = location_text(c.module, c.function, c.offset) if c.module else site
        out += [f"SYMBOL_NAME:  {symbol}", "", f"MODULE_NAME: {c.module or short}", "", f"IMAGE_NAME:  {image}", ""]
        if c.timestamp is not None:
            out += [f"IMAGE_VERSION_TIMESTAMP:  {c.timestamp:x}", ""]
        out += [f"PROBABLE_CULPRIT:  {site}", "", f"CULPRIT_RULE:  {c.rule or ''}", ""]
        if c.evidence:
            out += [f"CULPRIT_EVIDENCE:  {c.evidence}", ""]
    else:
        out += ["MODULE_NAME: Unknown_Module", "", "IMAGE_NAME:  Unknown_Image", ""]
    if facts is not None and facts.bucket_id:
        out += [f"FAILURE_BUCKET_ID:  {facts.bucket_id}", ""]
        if facts.failure_class:
            out += [f"FAILURE_CLASS:  {facts.failure_class}", ""]
    known = t.machine in MACHINES and MACHINES[t.machine].arch is not None
    platform = machine_arch_text(t.machine).split()[0] if known else "unknown"
    out += [f"OSPLATFORM_TYPE:  {platform}", "", f"OSNAME:  {os_name(t.build)}", ""]
    if t.build is not None:
        out += [f"OSBUILD:  {t.build}", ""]
    out += ["Followup:     MachineOwner", "---------"]
    return "\n".join(out) + "\n"
