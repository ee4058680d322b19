"""Native commands over what the dump holds: ``dd``/``dq``/``db``/``dp``/``dps`` memory display, ``.time``,
``!thread``, ``!process -1 0``, and the command list (``help``, ``?``, ``.help``).

Memory comes from :attr:`KernelParts.memory` (a small dump's copies, or a large dump's whole address space);
bytes the dump does not hold print as ``??`` as the debugger does. Output follows WinDbg's column layout.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from dbgauto.errors import DebuggerCommandError

if TYPE_CHECKING:
    from dbgauto.kernel.parts import KernelParts

__all__ = ["COMMAND_HELP", "MAX_DISPLAY_BYTES", "display_memory", "help_text", "process_text", "thread_text"]

ENGINE_NAME: Final = "native"
MAX_DISPLAY_BYTES: Final = 1 << 20  # an "L" count beyond this is refused: a display is for reading, not dumping

COMMAND_HELP: Final = (
    ("vertarget", "the target system: OS, build, product, kernel base, session time, uptime"),
    ("version", "the engine and the target"),
    (".time", "debug session time and system uptime"),
    (".bugcheck", "the bug check code and its four parameters"),
    ("!analyze [-v]", "the crash summary (-v: parameters explained, culprit, stack scan)"),
    ("lm [v] [m PATTERN]", "loaded modules (lmv: verbose; lm m nt*: by name)"),
    ("k, kb, kv, kp, kn", "the crashing thread's stack (a scan without symbols)"),
    ("r [reg,...]", "the crash context's registers"),
    ("db / dd / dq ADDR [L n]", "memory as bytes, dwords, qwords (what the dump holds; ?? where absent)"),
    ("dp / dps ADDR [L n]", "pointers (dps: with module+offset)"),
    ("!thread", "the crashing thread (address, ids, process)"),
    ("!process -1 0", "the current process (address, id, image name)"),
    (".dump /m [/o] FILE", "write a small memory dump"),
    (".echo TEXT", "print TEXT"),
    ("help, ?, .help", "this list"),
    ("q", "quit"),
)

_L_RE = re.compile(r"^[lL](\?)?\s*(?:0x)?([0-9a-fA-F`]+)$")
_UNITS: Final = {"db": 1, "dd": 4, "dq": 8}
_DEFAULT_BYTES: Final = 0x80


def help_text() -> str:
    width = max(len(c) for c, _ in COMMAND_HELP)
    lines = ["Commands the native engine answers (no symbols; --engine cdb or dbgeng for the rest):"]
    lines += [f"  {c:<{width}}  {what}" for c, what in COMMAND_HELP]
    return "\n".join(lines) + "\n"


def _addr_text(value: int, is_64bit: bool) -> str:
    if not is_64bit:
        return f"{value & 0xFFFFFFFF:08x}"
    v = value & 0xFFFFFFFFFFFFFFFF
    return f"{v >> 32:08x}`{v & 0xFFFFFFFF:08x}"


def _number(text: str, registers: dict[str, int], command: str) -> int:
    t = text.strip().lstrip("@").lower()
    if t in registers:
        return registers[t]
    t = t.removeprefix("0x").replace("`", "")
    try:
        return int(t, 16)
    except ValueError:
        raise DebuggerCommandError(ENGINE_NAME, command, f"bad address {text!r} (hex, or a register)") from None


def _range(parts: KernelParts, command: str, rest: str, unit: int) -> tuple[int, int]:
    """(start, count of units) from ``ADDR [L n]`` (``L?`` allowed)."""
    regs = {k.lower(): v for k, v in (parts.context.registers.items() if parts.context else ())}
    words = rest.split()
    if not words:
        raise DebuggerCommandError(ENGINE_NAME, command, "usage: " + command.split()[0] + " ADDRESS [L COUNT]")
    start = _number(words[0], regs, command)
    count = _DEFAULT_BYTES // unit
    tail = " ".join(words[1:])
    if tail:
        m = _L_RE.match(tail.replace(" ", "", 1) if tail[:1] in "lL" else tail)
        if not m:
            raise DebuggerCommandError(ENGINE_NAME, command, f"cannot read the range {tail!r} (use L COUNT)")
        count = int(m.group(2).replace("`", ""), 16)
    if count <= 0 or count * unit > MAX_DISPLAY_BYTES:
        raise DebuggerCommandError(ENGINE_NAME, command, f"range too large (at most {MAX_DISPLAY_BYTES:#x} bytes)")
    return start, count


def _reader(parts: KernelParts) -> Callable[[int, int], bytes | None]:
    mem = parts.memory
    if mem is None:
        return lambda _va, _n: None
    return mem.read


def display_memory(
    parts: KernelParts, command: str, verb: str, rest: str, modules: Callable[[int], str | None] | None = None
) -> str:
    """``db``/``dd``/``dq``/``dp``/``dps`` over what the dump holds."""
    ps = parts.pointer_size
    unit = ps if verb in ("dp", "dps") else _UNITS[verb]
    start, count = _range(parts, command, rest, unit)
    read = _reader(parts)
    fmt = {1: "<B", 4: "<I", 8: "<Q"}[unit]
    values: list[int | None] = []
    for i in range(count):
        data = read(start + i * unit, unit)
        values.append(None if data is None or len(data) < unit else struct.unpack(fmt, data)[0])
    lines: list[str] = []
    is64 = parts.is_64bit
    if verb == "dps":
        for i, v in enumerate(values):
            shown = "?" * (2 * unit) if v is None else _value_text(v, unit)
            where = modules(v) if modules is not None and v is not None else None
            lines.append(f"{_addr_text(start + i * unit, is64)}  {shown}" + (f"  {where}" if where else ""))
        return "\n".join(lines) + "\n"
    per_line = 16 // unit
    for row in range(0, count, per_line):
        chunk = values[row : row + per_line]
        addr = _addr_text(start + row * unit, is64)
        if unit == 1:
            cells = ["??" if v is None else f"{v:02x}" for v in chunk]
            hexes = " ".join(cells[:8]) + ("-" + " ".join(cells[8:]) if len(cells) > 8 else "")
            text = "".join("?" if v is None else (chr(v) if 0x20 <= v < 0x7F else ".") for v in chunk)
            lines.append(f"{addr}  {hexes:<47}  {text}")
        else:
            cells = ["?" * (2 * unit) if v is None else _value_text(v, unit) for v in chunk]
            lines.append(f"{addr}  " + " ".join(cells))
    return "\n".join(lines) + "\n"


def _value_text(v: int, unit: int) -> str:
    if unit == 8:
        return f"{v >> 32:08x}`{v & 0xFFFFFFFF:08x}"
    return f"{v:0{2 * unit}x}"


def thread_text(parts: KernelParts, process_name: str | None, pid: int | None, tid: int | None) -> str:
    """``!thread`` for the crashing thread, from what the dump carries (no symbols: no wait or IRP lists)."""
    is64 = parts.is_64bit
    if parts.thread_va is None:
        return "The dump does not say which thread was running (no thread address in its copies).\n"
    cid = f"{pid:04x}.{tid:04x}" if pid is not None and tid is not None else "unknown"
    proc = _addr_text(parts.process_va, is64) if parts.process_va is not None else "unknown"
    cpu = parts.processor if parts.processor is not None else "?"
    lines = [
        f"THREAD {_addr_text(parts.thread_va, is64)}  Cid {cid}  Processor {cpu}",
        f"Owning Process            {proc}       Image:         {process_name or 'unknown'}",
    ]
    if parts.top_of_stack is not None:
        lines.append(
            f"Stack copy at             {_addr_text(parts.top_of_stack, is64)}  ({len(parts.stack or b'')} bytes)"
        )
    return "\n".join(lines) + "\n"


def process_text(parts: KernelParts, process_name: str | None, pid: int | None) -> str:
    """``!process -1 0``: the current process, from what the dump carries."""
    if parts.process_va is None:
        return "The dump does not say which process was running (no process address in its copies).\n"
    cid = f"{pid:04x}" if pid is not None else "unknown"
    return (
        f"PROCESS {_addr_text(parts.process_va, parts.is_64bit)}\n"
        f"    Cid: {cid}    Image: {process_name or 'unknown'}\n"
    )
