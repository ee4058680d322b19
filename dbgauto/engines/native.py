"""The native engine: answers a useful subset of debugger commands from the format layer, on any OS.

No symbols and no disassembler: what it prints comes from the dump header and, for small memory dumps, the
triage sections (driver list, stack copy, process/thread). A large dump is first reduced to a temporary small
dump with :mod:`dbgauto.convert` (the same work as ``.dump /m``) when a command needs the driver list or the
stack. Unsupported commands raise :class:`DebuggerCommandError` naming what the real debugger would offer.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from dbgauto import __version__
from dbgauto.engines import native_commands as fmt
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
        return Availability(True, "pure Python; always available (no symbols, a subset of commands)", NATIVE_VERSION)

    def open(
        self,
        dump: os.PathLike[str] | str,
        *,
        symbol_path: str | None = None,
        timeout: float = DEFAULT_OPEN_TIMEOUT,
    ) -> NativeSession:
        if symbol_path:
            log.debug("native engine ignores the symbol path %s", symbol_path)
        return NativeSession(Path(dump))


class NativeSession(Session):
    """One open dump; commands are answered in-process, so timeouts never fire."""

    engine_name = ENGINE_NAME
    debugger_version = NATIVE_VERSION

    def __init__(self, path: Path) -> None:
        from dbgauto.kdump.reader import KernelDump

        self.dump_path = path
        self._dump: Any = KernelDump.open(path)
        self._small: Any = None  # KernelDump of the temporary small dump (large sources only)
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._closed = False
        self._pending_note: str | None = None  # why drivers/stack are missing, shown in the banner
        try:
            self.target = self._build_target()
        except BaseException:
            self.close()
            raise
        self.banner: Banner = parse_banner(self.banner_text())  # type: ignore[misc]
        self.prompt = f"{self.crash_cpu}: kd> "

    # -- facts -----------------------------------------------------------------------------------------------

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
            bugcheck_parameters=tuple(h.bugcheck_parameters),  # type: ignore[arg-type]
            registers=dict(ctx.registers) if ctx is not None else None,
            pc=_safe(lambda: ctx.pc) if ctx is not None else None,
            sp=_safe(lambda: ctx.sp) if ctx is not None else None,
        )
        tri = self._triage_source()
        if tri is None:
            t.modules_known = False
        else:
            self._fill_from_triage(t, tri)
        if self._pending_note:
            t.notes.append(self._pending_note)
        return t

    def _triage_source(self) -> Any:
        """The TriageDump to read drivers and stack from: the dump itself, or a temporary ``.dump /m`` of it."""
        if self._dump.dump_type == DumpType.TRIAGE:
            return self._dump.triage
        if not self._dump.has_physical_memory:
            self._pending_note = "the dump holds no memory pages: no driver list or stack to show"
            return None
        from dbgauto.convert import convert_dump

        self._tmpdir = tempfile.TemporaryDirectory(prefix="dbgauto-native-")
        out = Path(self._tmpdir.name) / "small.dmp"
        try:
            convert_dump(self.dump_path, out, engine="native", overwrite=True)
            from dbgauto.kdump.reader import KernelDump

            self._small = KernelDump.open(out)
            return self._small.triage
        except DbgautoError as exc:  # ConversionError, DumpFormatError, MemoryAccessError: say so, keep going
            log.info("%s: no small-dump view: %s", self.dump_path, exc)
            self._pending_note = f"driver list and stack unavailable: {exc}"
            return None

    def _fill_from_triage(self, t: fmt.Target, tri: Any) -> None:
        t.modules = [
            fmt.Module(d.name or d.base_name, d.base, d.size, d.timestamp, d.checksum) for d in tri.drivers if d.size
        ]
        t.unloaded = [(u.name, u.start, u.end) for u in tri.unloaded_drivers]
        t.process_name, t.pid, t.tid = tri.process_name, tri.pid, tri.tid
        kdbg = tri.kdbg
        kern_base = kdbg.get("KernBase") if kdbg is not None else None
        if not kern_base:
            kern_base = next((m.base for m in t.modules if fmt.module_short_name(m.path) == "nt"), None)
        t.kernel_base = kern_base
        t.crash_cpu = _crash_cpu(tri, t.number_processors)
        if t.registers is None and tri.context is not None:  # the triage copy of the context
            t.registers = dict(tri.context.registers)
            t.pc, t.sp = _safe(lambda: tri.context.pc), _safe(lambda: tri.context.sp)
        hits: list[fmt.ScanFrame] | None = None

        def scan() -> list[fmt.ScanFrame]:
            nonlocal hits
            if hits is None:
                hits = [
                    fmt.ScanFrame(h.address, h.value, fmt.module_short_name(h.module), h.offset)
                    for h in tri.stack_scan()
                ]
            return hits

        t.scan = scan

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
            return fmt.stack(t, rest)
        if verb_l == "!analyze":
            return fmt.analyze(t) if "-v" in rest.split() else fmt.analyze_summary(t)
        if verb_l == ".dump":
            return self._dump_command(command, rest)
        if verb_l.startswith("!"):
            raise unsupported(command, f"the {verb} extension")
        raise unsupported(command, f"the {verb!r} command and symbols")

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
        if self._closed:
            raise EngineError(ENGINE_NAME, f"session on {self.dump_path} is closed")
        out = Path(out)
        small_source = self.dump_path if self._dump.dump_type == DumpType.TRIAGE else None
        if small_source is None and self._small is not None:
            small_source = self._small.path  # the session's own .dump /m of this large dump
        if small_source is not None:
            from dbgauto.util.atomic import atomic_write

            with atomic_write(out, overwrite=overwrite) as fh, open(small_source, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)
            return out
        from dbgauto.convert import convert_dump

        return Path(convert_dump(self.dump_path, out, engine="native", overwrite=overwrite).output)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for dump in (self._small, self._dump):
            if dump is not None:
                try:
                    dump.close()
                except DbgautoError as exc:  # pragma: no cover - close errors are not actionable
                    log.debug("close: %s", exc)
        self._small = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None


_STACK_VERBS: Final = frozenset({"k", "kb", "kv", "kp", "kn", "kc", "kd", "kl", "kbn", "kvn", "kpn", "knl"})


def _echo_text(rest: str) -> str:
    """``.echo "text"`` prints text without the quotes; unquoted text is printed as is."""
    s = rest.strip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return s[1:-1]
    return s


def _safe(get: Callable[[], int]) -> int | None:
    try:
        return get()
    except (KeyError, AttributeError):
        return None


def _crash_cpu(tri: Any, n_procs: int | None) -> int | None:
    """The crashing CPU (the small dump's PRCB copy says which), when it is a plausible processor index."""
    number = tri.processor_number
    if number is None or (n_procs is not None and number >= n_procs):
        return None
    return int(number)
