"""The crashing thread's stack for the facts: the unwinder over a dump's KernelParts, frames named.

Which registers start the walk: the *exception context* when the bug check's parameters give a CONTEXT record
address (``.cxr``-style: P4 of 0x7E/0x1000007E, P3 of 0x3B, per Microsoft's bug check reference) and that record
is readable and plausible (its pc inside a module or equal to the exception address); else the dump's own
context (a small dump's triage CONTEXT, a large dump's crashing-processor context). 0x1E carries no context
address (its parameters are the exception code, address and two parameters), so it starts from the dump's.

Images: in large dumps the kernel modules are resident, so each module's PE header, section table and unwind
data are read from memory (:meth:`PeImage.from_memory`); small dumps hold no images, so after the context frame
only the module-range-filtered scan can run. Values equal to a bug check parameter are never scan frames.

x64 trap frames: the walk continues through a kernel trap handler's _KTRAP_FRAME into the interrupted context
(user mode included); offsets from the symbol table's ``_KTRAP_FRAME`` when the symbolizer is a symbol context
that has one, else the Windows 8+ constants (:mod:`dbgauto.unwind.trapframe`). Handlers are spotted by name when
the symbolizer names functions, else by the machine frame in their unwind data. Such frames say ``trap_frame``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from dbgauto.analysis.facts import FrameFact
from dbgauto.analysis.naming import Symbolizer
from dbgauto.kdump.constants import DumpType, Machine
from dbgauto.kdump.structs.context import context_layout, parse_context
from dbgauto.pe import PeImage
from dbgauto.unwind import Module, unwind
from dbgauto.unwind.trapframe import layout_from_type
from dbgauto.vocab.bugchecks import base_code

if TYPE_CHECKING:
    from dbgauto.kernel.parts import KernelParts
    from dbgauto.unwind import StackWalk

__all__ = [
    "ARCH_OF_MACHINE",
    "CONTEXT_RECORD_PARAMETER",
    "StackResult",
    "exception_context",
    "function_start",
    "unwound_stack",
]

ARCH_OF_MACHINE: Final = {Machine.AMD64: "x64", Machine.ARM64: "arm64", Machine.I386: "x86"}
# bug check base code → 1-based parameter holding a CONTEXT record address (bug check code reference)
CONTEXT_RECORD_PARAMETER: Final[dict[int, int]] = {0x7E: 4, 0x3B: 3}
MAX_FACT_FRAMES: Final = 64
_SP: Final = {"x64": "rsp", "arm64": "sp", "x86": "esp"}


@dataclass(slots=True)
class StackResult:
    """The unwound frames (as facts), where the walk started, and what it noticed."""

    frames: tuple[FrameFact, ...] = ()
    kind: str = "scan"
    started_from: str | None = None  # "exception context (P4)", "dump context"
    warnings: list[str] = field(default_factory=list)


def _reader(parts: KernelParts):  # -> Memory
    mem = parts.memory
    low = parts.top_of_stack
    data = parts.stack

    def read(va: int, size: int) -> bytes | None:
        if mem is not None:
            got = mem.read(va, size)
            if got is not None:
                return got
        if data is not None and low is not None and low <= va and va + size <= low + len(data):
            return bytes(data[va - low : va - low + size])
        return None

    return read


def exception_context(parts: KernelParts, code: int | None, params: Sequence[int]) -> tuple[dict[str, int], int] | None:
    """The registers of the CONTEXT record a bug check parameter points at, and the parameter's index; None when
    the bug check has none, or the record is unreadable or implausible."""
    if code is None:
        return None
    index = CONTEXT_RECORD_PARAMETER.get(base_code(code))
    if index is None or index > len(params) or not params[index - 1]:
        return None
    try:
        lay = context_layout(parts.machine)
    except ValueError:
        return None
    raw = _reader(parts)(params[index - 1], lay.size)
    if raw is None:
        return None
    ctx = parse_context(parts.machine, raw)
    try:
        pc, sp = ctx.pc, ctx.sp
    except KeyError:
        return None
    in_module = any(d.base <= pc < d.base + d.size for d in parts.drivers)
    exception_address = params[1] if len(params) > 1 else None
    if not sp or not (in_module or pc == exception_address):
        return None
    return dict(ctx.registers), index


def _image_source(parts: KernelParts, read):  # -> ImageSource | None
    if parts.header.dump_type == DumpType.TRIAGE or parts.memory is None:
        return None  # a small dump holds no images

    def image_for(m: Module) -> PeImage | None:
        head = read(m.base, 2)
        if head != b"MZ":
            return None  # header not resident
        return PeImage.from_memory(read, m.base, name=m.name)

    return image_for


def _limits(parts: KernelParts, sp: int) -> tuple[int, int] | None:
    top = parts.top_of_stack
    if top is None:
        return None
    high = top + len(parts.stack) if parts.stack else top + 0x6000
    if parts.stack_base and parts.stack_base > high:
        high = parts.stack_base
    low = min(top, sp)
    return low, max(high, low + 1)


def unwound_stack(
    parts: KernelParts,
    *,
    bugcheck_code: int | None,
    parameters: Sequence[int],
    symbolizer: Symbolizer | None = None,
) -> StackResult:
    """Unwind the crashing thread (see the module docstring); never raises on bad input."""
    out = StackResult()
    arch = ARCH_OF_MACHINE.get(parts.machine)
    if arch is None:
        out.warnings.append(f"no unwinder for machine {parts.machine:#x}")
        return out
    read = _reader(parts)
    found = exception_context(parts, bugcheck_code, parameters)
    if found is not None:
        regs, index = found
        out.started_from = f"exception context (P{index})"
    elif parts.context is not None:
        regs = dict(parts.context.registers)
        out.started_from = "dump context"
    else:
        return out
    sp = regs.get(_SP[arch], 0)
    mods = [Module(d.base_name, d.base, d.size) for d in parts.drivers if d.size]
    walk: StackWalk = unwind(
        arch,
        regs,
        read,
        mods,
        image_for=_image_source(parts, read),
        stack_limits=_limits(parts, int(sp or 0)),
        exclude=[p for p in parameters if p],
        ktrap_frame=_ktrap_layout(symbolizer) if arch == "x64" else None,
        function_name=_function_namer(symbolizer),
    )
    out.warnings.extend(walk.warnings)
    frames = []
    for f in walk.frames[:MAX_FACT_FRAMES]:
        module, function, offset = f.module, None, f.offset
        if symbolizer is not None:
            named = _safe_name(symbolizer, f.pc)
            if named is not None:
                module, function, offset = named
        frames.append(
            FrameFact(
                index=f.index,
                address=f.sp,
                value=f.pc,
                module=module,
                offset=offset,
                trust=f.trust,
                function=function,
                trap_frame=f.trap_frame,
            )
        )
    out.frames = tuple(frames)
    out.kind = "unwound" if any(f.trust != "scan" for f in frames) else "scan"
    return out


def _ktrap_layout(symbolizer: Symbolizer | None) -> dict[str, int]:
    """_KTRAP_FRAME offsets: the symbol table's where the symbolizer has one (a SymbolContext), else the constants."""
    type_of = getattr(symbolizer, "type", None)
    info = None
    if callable(type_of):
        try:
            info = type_of("_KTRAP_FRAME")
        except Exception:  # a symbol source is outside our control: the constants serve
            info = None
    return layout_from_type(getattr(info, "fields", None))


def _function_namer(symbolizer: Symbolizer | None):  # -> Callable[[int], str | None] | None
    if symbolizer is None:
        return None

    def name(address: int) -> str | None:
        named = _safe_name(symbolizer, address)
        return named[1] if named is not None else None

    return name


def _safe_name(symbolizer: Symbolizer, address: int) -> tuple[str, str | None, int] | None:
    try:
        return symbolizer.name(address)
    except Exception:  # a symbol source is outside our control: no name, never a failed verdict
        return None


def function_start(parts: KernelParts, base: int, address: int) -> int | None:
    """The RVA of the function holding ``address`` from the module's resident unwind data (large dumps), or None."""
    read = _reader(parts)
    source = _image_source(parts, read)
    if source is None:
        return None
    try:
        img = source(Module("culprit", base, max(address - base + 1, 1)))
        table = img.exception_table() if img is not None else None
        fn = table.lookup(address - base) if table is not None else None
    except Exception:  # damaged image in memory: no function start, the bucket keeps the module alone
        return None
    return fn.begin if fn is not None else None
