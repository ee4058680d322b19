"""The native engine: answers a useful subset of debugger commands from the format layer, on any OS.

No disassembler: what it prints comes from the dump header and the crash's KernelParts (driver list, stack copy,
process/thread), read once per session: a small dump's sections, or one walk of a large dump's kernel
(:mod:`dbgauto.kernel`). Facts and ``.dump /m`` come from the same parts. Symbols come from the symbol path
(``--symbols``, else ``DBGAUTO_SYMBOL_PATH``, else ``_NT_SYMBOL_PATH``): the dump's
:class:`~dbgauto.symbols.context.SymbolContext` is built on first need (a conversion never pays for it) and,
when it identifies the kernel's table, ``k`` and ``ln`` name functions and ``x``/``dt`` answer; without one
everything works as before, labelled "no symbols". Unsupported commands raise :class:`DebuggerCommandError`
naming what the real debugger would offer.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from dbgauto.engines import native_commands as fmt
from dbgauto.engines import native_memory
from dbgauto.engines.base import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_OPEN_TIMEOUT,
    QUIT_COMMANDS,
    Availability,
    Banner,
    Capability,
    CommandResult,
    Engine,
    Session,
    parse_banner,
)
from dbgauto.errors import (
    DbgautoError,
    DebuggerCommandError,
    EngineError,
    OutputExistsError,
)
from dbgauto.kdump.constants import DumpType
from dbgauto.util.layout import PAGE_FILL32, PAGE_FILL64
from dbgauto.version import __version__

if TYPE_CHECKING:
    from dbgauto.analysis.facts import CrashFacts
    from dbgauto.analysis.naming import Symbolizer
    from dbgauto.kernel.kdbg import KdbgKeys
    from dbgauto.kernel.parts import KernelParts
    from dbgauto.symbols.context import SymbolContext

__all__ = ["NATIVE_VERSION", "NativeEngine", "NativeSession", "unsupported"]

log = logging.getLogger(__name__)

ENGINE_NAME: Final = "native"
NATIVE_VERSION: Final = f"dbgauto-native {__version__}"
INSTALL_HINT: Final = "install Debugging Tools for Windows for {what}"


def unsupported(command: str, what: str) -> DebuggerCommandError:
    """The one error every command outside the native subset raises."""
    hint = INSTALL_HINT.format(what=what)
    return DebuggerCommandError(ENGINE_NAME, command, f"not supported by the native engine ({hint})")


class NativeEngine(Engine):
    """Pure-Python engine over :mod:`dbgauto.kdump`; always available."""

    name = ENGINE_NAME
    capabilities = Capability.RUN_COMMANDS | Capability.WRITE_SMALL_DUMP | Capability.ANY_OS

    def available(self) -> Availability:
        return Availability(True, "pure Python; always available (a subset of commands)", NATIVE_VERSION)

    def open(
        self,
        dump: os.PathLike[str] | str,
        *,
        symbol_path: str | None = None,
        timeout: float = DEFAULT_OPEN_TIMEOUT,
    ) -> NativeSession:
        """``symbol_path``: as ``--symbols`` gives it; None = the environment's (see the module docstring)."""
        return NativeSession(Path(dump), symbol_path=symbol_path)

    def open_hashed(
        self,
        dump: os.PathLike[str] | str,
        *,
        digest: str | None,
        keys: KdbgKeys | None = None,
        symbol_path: str | None = None,
    ) -> NativeSession:
        """Open with the file's identity hash already computed (a batch task hashes each dump once) and, when
        known, the keys of an encoded KDBG."""
        return NativeSession(Path(dump), digest=digest, keys=keys, symbol_path=symbol_path)


class NativeSession(Session):
    """One open dump; commands are answered in-process, so timeouts never fire."""

    engine_name = ENGINE_NAME
    debugger_version = NATIVE_VERSION

    def __init__(
        self,
        path: Path,
        *,
        digest: str | None = None,
        keys: KdbgKeys | None = None,
        symbolizer: Symbolizer | None = None,
        symbol_path: str | None = None,
    ) -> None:
        from dbgauto.kdump.reader import KernelDump
        from dbgauto.symbols.sympath import resolve_symbol_path

        self.symbolizer = symbolizer  # names code addresses in the verdict (module+offset without one)
        self.dump_path = path
        self.resolved_symbol_path = resolve_symbol_path(symbol_path)
        self._symbols: SymbolContext | None = None
        self._symbols_built = False
        self._digest = digest
        self._keys = keys
        self._dump: Any = KernelDump.open(path)
        self._closed = False
        self.parts: KernelParts | None = None
        self.parts_missing: str | None = None  # why the parts could not be read
        self._facts: CrashFacts | None = None
        self._target: fmt.Target | None = None
        try:
            self._read_parts()
        except BaseException:
            self.close()
            raise
        self._banner: Banner | None = None

    @property
    def target(self) -> fmt.Target:
        """What the commands print from, built on first use (facts and conversion never need it: a batch of small
        dumps skips it)."""
        if self._target is None:
            self._target = self._build_target()
        return self._target

    @property  # type: ignore[override]
    def prompt(self) -> str:
        return f"{self.crash_cpu}: kd> "

    # -- facts -----------------------------------------------------------------------------------------------

    def _read_parts(self) -> None:
        """The crash's parts, once: a small dump's sections or one kernel walk (a missing essential is noted)."""
        from dbgauto.kernel.open import read_parts

        if self._dump.dump_type == DumpType.HEADER or not (
            self._dump.dump_type == DumpType.TRIAGE or self._dump.has_physical_memory
        ):
            self.parts_missing = "the dump holds no memory pages: no driver list or stack to show"
            return
        try:
            self.parts = read_parts(self._dump, keys=self._keys)
        except DbgautoError as exc:  # ConversionError, DumpFormatError, MemoryAccessError: say so, keep going
            log.info("%s: no kernel parts: %s", self.dump_path, exc)
            self.parts_missing = str(exc)

    def facts(self) -> CrashFacts:
        """The dump's facts from its header and parts (computed once)."""
        if self._facts is None:
            from dbgauto.analysis.facts import source_fact
            from dbgauto.analysis.from_dump import facts_from_parts

            self._facts = facts_from_parts(
                self._dump,
                self.parts,
                source=source_fact(self.dump_path, digest=self._digest),
                missing=self.parts_missing,
                symbolizer=self.symbolizer,
                symbols=self.symbols,
            )
        return self._facts

    @property
    def symbols(self) -> SymbolContext | None:
        """The dump's symbol context, built once on first use; None when the dump's parts could not be read."""
        if not self._symbols_built:
            self._symbols_built = True
            if self.parts is not None:
                from dbgauto.symbols.context import KernelInputs, SymbolContext

                self._symbols = SymbolContext.build(KernelInputs.from_parts(self.parts), self.resolved_symbol_path)
                for w in self._symbols.warnings:
                    log.warning("%s: %s", self.dump_path, w)
        return self._symbols

    def _attach_symbols(self) -> SymbolContext | None:
        """Give the command formatter the context's names (once); the context is built here if not yet."""
        ctx = self.symbols
        t = self.target
        if ctx is not None and ctx.table is not None and t.namer is None:
            t.namer = ctx.code_name
            t.symbols_line = ctx.describe()
        return ctx

    def _build_target(self) -> fmt.Target:
        d = self._dump
        h = d.header
        ctx = h.context
        t = fmt.Target(
            path=d.path,
            dump_type=int(d.dump_type),
            is_64bit=d.is_64bit,
            machine=d.machine,
            major_version=h.major_version,
            build=h.minor_version,
            number_processors=h.number_processors,
            product_type=h.product_type,
            suite_mask=h.suite_mask,
            kernel_base=None,
            ps_loaded_module_list=h.ps_loaded_module_list,
            system_time=h.system_time,
            uptime_100ns=h.system_uptime_100ns,
            bugcheck_code=h.bugcheck_code,
            # a parameter holding the "PAGE" filler is shown as the debugger shows it: the filler's raw value
            bugcheck_parameters=tuple(  # type: ignore[arg-type]
                (PAGE_FILL64 if h.is_64bit else PAGE_FILL32) if p is None else p for p in h.bugcheck_parameters
            ),
            registers=dict(ctx.registers) if ctx is not None else None,
            pc=_safe(lambda: ctx.pc) if ctx is not None else None,
            sp=_safe(lambda: ctx.sp) if ctx is not None else None,
            symbol_search_path=_path_line(self.resolved_symbol_path),
        )
        if self.parts is None:
            t.modules_known = False
            if self.parts_missing:
                note = self.parts_missing
                if not note.startswith("the dump holds"):
                    note = f"driver list and stack unavailable: {note}"
                t.notes.append(note)
        else:
            self._fill_from_parts(t, self.parts)
        return t

    def _fill_from_parts(self, t: fmt.Target, parts: KernelParts) -> None:
        from dbgauto.kernel.identity import identity_of
        from dbgauto.kernel.stackscan import ModuleIndex, scan_stack

        t.modules = [
            fmt.Module(d.name or d.base_name, d.base, d.size, d.timestamp, d.checksum) for d in parts.drivers if d.size
        ]
        t.unloaded = [(u.name, u.start, u.end) for u in parts.unloaded_drivers or ()]
        who = identity_of(parts)
        t.process_name, t.pid, t.tid = who.process_name, who.pid, who.tid
        kern_base = parts.kdbg_fields.get("KernBase")
        if not kern_base:
            kern_base = next((m.base for m in t.modules if fmt.module_short_name(m.path) == "nt"), None)
        t.kernel_base = kern_base
        cpu = parts.processor
        t.crash_cpu = cpu if cpu is not None and (t.number_processors is None or cpu < t.number_processors) else None
        if t.registers is None and parts.context is not None:  # the triage copy of the context
            ctx = parts.context
            t.registers = dict(ctx.registers)
            t.pc, t.sp = _safe(lambda: ctx.pc), _safe(lambda: ctx.sp)
        hits: list[fmt.ScanFrame] | None = None

        def scan() -> list[fmt.ScanFrame]:
            nonlocal hits
            if hits is None:
                found = scan_stack(parts.stack, parts.top_of_stack, ModuleIndex(parts.drivers), parts.pointer_size)
                hits = [fmt.ScanFrame(h.address, h.value, fmt.module_short_name(h.module), h.offset) for h in found]
            return hits

        t.scan = scan
        t.verdict = self.facts
        t.read = parts.memory.read if parts.memory is not None else None

    @property  # type: ignore[override]
    def banner(self) -> Banner:
        """The banner cdb would print, parsed (on first use: conversion and facts never need it)."""
        if self._banner is None:
            self._banner = parse_banner(self.banner_text())
        return self._banner

    @property
    def dump(self) -> Any:
        """The open KernelDump (closed with the session)."""
        return self._dump

    # -- the Session interface ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def crash_cpu(self) -> int:
        return self.target.crash_cpu or 0

    def banner_text(self) -> str:
        return fmt.banner_text(self.target, version=__version__)

    def run(self, command: str, *, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> CommandResult:
        if self._closed:
            raise EngineError(ENGINE_NAME, f"session on {self.dump_path} is closed")
        start = time.perf_counter()
        text = command.strip()
        output = self._dispatch(text)
        return CommandResult(text, output, time.perf_counter() - start, ENGINE_NAME, NATIVE_VERSION)

    def _dispatch(self, command: str) -> str:
        verb, _, rest = command.partition(" ")
        verb_l = verb.lower()
        t = self.target
        if verb_l in QUIT_COMMANDS:
            self.close()
            return "quit:\n"
        if verb_l == ".echo":
            return _echo_text(rest) + "\n"
        if verb_l == "vertarget":
            return fmt.vertarget(t)
        if verb_l == ".bugcheck":
            return fmt.bugcheck(t)
        if verb_l == "version":
            return f"{NATIVE_VERSION} (pure Python, no symbols)\n\n{fmt.vertarget(t)}"
        if verb_l.startswith("lm"):
            return fmt.lm(t, f"{verb[2:]} {rest}".strip())
        if verb_l == "r":
            try:
                return fmt.registers(t, rest)
            except KeyError as exc:
                raise DebuggerCommandError(ENGINE_NAME, command, f"bad register {exc.args[0]!r}") from None
        if verb_l in _STACK_VERBS:
            self._attach_symbols()
            return fmt.stack(t, rest, verb_l)
        if verb_l == "!analyze":
            self._attach_symbols()
            return fmt.analyze(t) if "-v" in rest.split() else fmt.analyze_summary(t)
        if verb_l in ("ln", "x", "dt"):
            return self._symbol_command(verb_l, command, rest)
        if verb_l == ".dump":
            return self._dump_command(command, rest)
        if verb_l in ("help", ".help") or (verb_l == "?" and not rest.strip()):
            return native_memory.help_text()
        if verb_l == ".time":
            return (
                f"Debug session time: {fmt.session_time(t.system_time)}\nSystem Uptime: {fmt.uptime(t.uptime_100ns)}\n"
            )
        if verb_l in ("db", "dd", "dq", "dp", "dps", "!thread", "!process"):
            return self._from_parts(command, verb_l, rest)
        if verb_l.startswith("!"):
            raise unsupported(command, f"the {verb} extension")
        raise unsupported(command, f"the {verb!r} command and symbols")

    def _symbol_command(self, verb: str, command: str, rest: str) -> str:
        from dbgauto.engines import native_symbols as sym

        ctx = self._attach_symbols()
        t = self.target
        try:
            if verb == "ln":
                return sym.ln(ctx, rest, t.is_64bit)
            if ctx is None or ctx.table is None:  # as before symbols: x and dt need a kernel table
                why = ctx.describe() if ctx is not None else f"no symbols: {self.parts_missing or 'no kernel parts'}"
                raise unsupported(command, f"{verb} ({why})")
            if verb == "x":
                return sym.x(ctx, rest, t.is_64bit)
            ps = self.parts.pointer_size if self.parts is not None else 8
            return sym.dt(ctx, rest, pointer_size=ps, is_64bit=t.is_64bit)
        except ValueError as exc:
            raise DebuggerCommandError(ENGINE_NAME, command, str(exc)) from None

    def _from_parts(self, command: str, verb: str, rest: str) -> str:
        """Commands answered from the kernel parts: memory display, the current thread and process."""
        parts = self.parts
        if parts is None:
            raise DebuggerCommandError(ENGINE_NAME, command, self.parts_missing or "the dump holds no memory")
        if verb in ("!thread", "!process"):
            words = rest.split()
            if verb == "!process" and words and words[0] != "-1":
                raise unsupported(command, "the !process extension beyond the current process (!process -1 0)")
            if verb == "!thread" and words and words[0] != "-1":
                raise unsupported(command, "the !thread extension beyond the current thread (!thread)")
            from dbgauto.kernel.identity import identity_of

            who = identity_of(parts)
            if verb == "!thread":
                return native_memory.thread_text(parts, who.process_name, who.pid, who.tid)
            return native_memory.process_text(parts, who.process_name, who.pid)
        return native_memory.display_memory(parts, command, verb, rest, self._module_of)

    def _module_of(self, address: int) -> str | None:
        parts = self.parts
        for d in parts.drivers if parts is not None else ():
            if d.size and d.base <= address < d.base + d.size:
                return f"{fmt.module_short_name(d.name)}+{address - d.base:#x}"
        return None

    def _dump_command(self, command: str, rest: str) -> str:
        try:
            words = shlex.split(rest, posix=False)
        except ValueError as exc:
            raise DebuggerCommandError(ENGINE_NAME, command, f"cannot parse: {exc}") from None
        if not words:
            raise DebuggerCommandError(ENGINE_NAME, command, "usage: .dump /m [/o] FILE")
        options = [w.lower() for w in words[:-1]]  # cdb's syntax: .dump [options] FileName
        bad = [o for o in options if o[:1] not in "/-" or o[1:] not in ("m", "o")]
        if bad:
            raise unsupported(command, f".dump {' '.join(bad)} (the native engine writes /m and /o only)")
        out = Path(words[-1].strip('"'))
        overwrite = "/o" in options or "-o" in options
        try:
            written = self.write_small_dump(out, overwrite=overwrite)
        except OutputExistsError:
            raise DebuggerCommandError(ENGINE_NAME, command, f"{out} exists (add /o to overwrite)") from None
        return f"Creating {written} - mini kernel dump\nDump successfully written\n"

    def write_small_dump(self, out: os.PathLike[str] | str, *, overwrite: bool = False) -> Path:
        written, _warnings = self.write_small_dump_noting(out, overwrite=overwrite)
        return written

    def write_small_dump_noting(
        self, out: os.PathLike[str] | str, *, overwrite: bool = False
    ) -> tuple[Path, list[str]]:
        """``.dump /m`` from the session's parts; returns the path and what the writer noted (skipped memory...)."""
        if self._closed:
            raise EngineError(ENGINE_NAME, f"session on {self.dump_path} is closed")
        out = Path(out)
        if self._dump.dump_type == DumpType.TRIAGE:
            from dbgauto.util.atomic import atomic_write

            with atomic_write(out, overwrite=overwrite) as fh, open(self.dump_path, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)
            return out, ["already a small memory dump; copied unchanged"]
        if self.parts is None:
            from dbgauto.errors import ConversionError

            raise ConversionError(f"{self.dump_path}: {self.parts_missing or 'no kernel parts'}")
        from dbgauto.convert import write_small_dump

        notes: list[str] = []
        d = self._dump
        if out.exists() and not overwrite:
            raise OutputExistsError(out)
        written = write_small_dump(
            self.parts, out, overwrite=overwrite, source_buffer=d.buffer[: d.header_size], warnings=notes
        )
        return written, list(dict.fromkeys([*d.warnings, *self.parts.warnings, *notes]))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        memory = self.parts.memory if self.parts is not None else None
        close_memory = getattr(memory, "close", None)
        if close_memory is not None:
            close_memory()
        self.parts = None
        try:
            self._dump.close()
        except DbgautoError as exc:  # pragma: no cover - close errors are not actionable
            log.debug("close: %s", exc)


_STACK_VERBS: Final = frozenset({"k", "kb", "kv", "kp", "kn", "kc", "kd", "kl", "kbn", "kvn", "kpn", "knl"})


def _echo_text(rest: str) -> str:
    """``.echo "text"`` prints text without the quotes; unquoted text is printed as is."""
    s = rest.strip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return s[1:-1]
    return s


def _path_line(resolved: Any) -> str:
    """The banner's symbol path: the text, where it came from, and whether it may use the network."""
    net = "may use the network" if resolved.path.uses_network else "local only"
    if resolved.source == "default":
        return f"(none given: dbgauto's cache {resolved.cache_dir}, {net})"
    source = "--symbols" if resolved.source == "argument" else resolved.source
    return f"{resolved.path.text} (from {source}, {net})"


def _safe(get: Callable[[], int]) -> int | None:
    try:
        return get()
    except (KeyError, AttributeError):
        return None
