"""The crashing thread's stack for the facts: the unwinder over a dump's KernelParts, frames named.

Which registers start the walk: the *exception context* when the bug check's parameters give a CONTEXT record
address (``.cxr``-style: P4 of 0x7E/0x1000007E, P3 of 0x3B, per Microsoft's bug check reference) and that record
is readable and plausible (its pc inside a module or equal to the exception address); else the dump's own
context (a small dump's triage CONTEXT, a large dump's crashing-processor context). 0x1E carries no context
address (its parameters are the exception code, address and two parameters), so it starts from the dump's.

Images: in large dumps the kernel modules are resident, so each module's PE header, section table and unwind
data are read from memory (:meth:`PeImage.from_memory`); small dumps hold no images, so they (and modules whose
header is not resident) take the image the symbol path supplies by TimeDateStamp + SizeOfImage, as WinDbg does
(:meth:`dbgauto.symbols.context.SymbolContext.image`: unwind data and code bytes from the file, the stack from the
dump). Without one, after the context frame only the module-range-filtered scan can run. Values equal to a bug
check parameter are never scan frames.

x64 trap frames: the walk continues through a kernel trap handler's _KTRAP_FRAME into the interrupted context
(user mode included); offsets from the symbol table's ``_KTRAP_FRAME`` when the symbolizer is a symbol context
that has one, else the Windows 8+ constants (:mod:`dbgauto.unwind.trapframe`). Handlers are spotted by name when
the symbolizer names functions, else by the machine frame in their unwind data. Such frames say ``trap_frame``
and ``trap_frame_at`` (the _KTRAP_FRAME's address, WinDbg's "TrapFrame @"; :mod:`dbgauto.analysis.trapframes`).

Trap frames as the start: 0x8E gives its trap frame (P3); 0x1E gives none, so when the walk from the dump's context
does not reach the exception address (P2) — so in a small dump without images from the symbol path — the stack copy
is searched for the _KTRAP_FRAME that saved P2 (WinDbg reaches it through the exception dispatch), and the stack
is the interrupted context from that trap frame onward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from dbgauto.analysis import trapframes
from dbgauto.analysis.facts import FrameFact
from dbgauto.analysis.naming import Symbolizer
from dbgauto.kdump.constants import DumpType, Machine
from dbgauto.kdump.structs.context import context_layout, parse_context
from dbgauto.pe import PeImage
from dbgauto.unwind import Module, unwind
from dbgauto.unwind.trapframe import layout_from_type, read_ktrap_frame
from dbgauto.vocab.bugchecks import base_code

if TYPE_CHECKING:
    from dbgauto.kernel.parts import KernelParts
    from dbgauto.unwind import StackWalk
    from dbgauto.unwind.walk import FrameDataSource

__all__ = [
    "ARCH_OF_MACHINE",
    "CONTEXT_RECORD_PARAMETER",
    "TRAP_FRAME_PARAMETER",
    "StackResult",
    "exception_context",
    "function_start",
    "unwound_stack",
]

ARCH_OF_MACHINE: Final = {Machine.AMD64: "x64", Machine.ARM64: "arm64", Machine.I386: "x86"}
# bug check base code → 1-based parameter holding a CONTEXT record address (bug check code reference)
CONTEXT_RECORD_PARAMETER: Final[dict[int, int]] = {0x7E: 4, 0x3B: 3}
# bug check base code → 1-based parameter holding a _KTRAP_FRAME address (0x8E P3, bug check code reference)
TRAP_FRAME_PARAMETER: Final[dict[int, int]] = {0x8E: 3}
# bug check base codes whose exception address (P2) locates the trap frame on the stack (module docstring)
TRAP_FRAME_BY_EXCEPTION_ADDRESS: Final = frozenset({0x1E})
MAX_FACT_FRAMES: Final = 64
_SP: Final = {"x64": "rsp", "arm64": "sp", "x86": "esp"}


@dataclass(slots=True)
class StackResult:
    """The unwound frames (as facts), where the walk started, and what it noticed."""

    frames: tuple[FrameFact, ...] = ()
    kind: str = "scan"
    started_from: str | None = None  # "exception context (P4)", "trap frame (P3)", "dump context"
    warnings: list[str] = field(default_factory=list)
    trap_frame: int | None = None  # the faulting _KTRAP_FRAME: the walk's start, or the innermost one it crossed

    @property
    def from_fault(self) -> bool:
        """True when the walk starts at the faulting context (an exception context or a trap frame)."""
        return self.started_from is not None and self.started_from.startswith(("exception", "trap"))


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


def _image_source(parts: KernelParts, read, images: object | None = None):  # -> ImageSource | None
    """Each module's image: resident in a large dump's memory, else (small dumps, headers paged out) from
    ``images.image(base)`` when given (a SymbolContext: the symbol path's stores and servers), else none."""
    fetch = getattr(images, "image", None)
    fetch = fetch if callable(fetch) else None
    resident = parts.header.dump_type != DumpType.TRIAGE and parts.memory is not None
    if not resident and fetch is None:
        return None  # a small dump holds no images, and nothing can supply them

    def image_for(m: Module) -> PeImage | None:
        if resident and read(m.base, 2) == b"MZ":
            return PeImage.from_memory(read, m.base, name=m.name)
        if fetch is None:
            return None  # header not resident
        try:
            got = fetch(m.base)
        except Exception:  # a symbol source is outside our control: no image, the walk goes on without
            return None
        return got if isinstance(got, PeImage) else None

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
    images: object | None = None,
    frame_data: FrameDataSource | None = None,
) -> StackResult:
    """Unwind the crashing thread (see the module docstring); never raises on bad input. ``images``: what
    supplies images the dump lacks (a SymbolContext's ``image``); default the symbolizer when it offers one.
    ``frame_data(module)`` (x86) gives a module's FPO FrameData; default: the symbolizer's when it offers one."""
    out = StackResult()
    arch = ARCH_OF_MACHINE.get(parts.machine)
    if arch is None:
        out.warnings.append(f"no unwinder for machine {parts.machine:#x}")
        return out
    read = _reader(parts)
    layout = _ktrap_layout(symbolizer) if arch == "x64" else None
    found = exception_context(parts, bugcheck_code, parameters)
    trap = trap_context(parts, bugcheck_code, parameters, layout) if found is None and layout is not None else None
    if found is not None:
        regs, index = found
        out.started_from = f"exception context (P{index})"
    elif trap is not None and trap[2] is not None:
        regs, out.trap_frame = trap[0], trap[1]
        out.started_from = f"trap frame (P{trap[2]})"
    elif parts.context is not None:
        regs = dict(parts.context.registers)
        out.started_from = "dump context"
    else:
        return out
    mods = [Module(d.base_name, d.base, d.size) for d in parts.drivers if d.size]
    fpo = _frame_data_source(symbolizer, frame_data) if arch == "x86" else None

    def walk_from(start: dict[str, int]) -> StackWalk:
        return unwind(
            arch,
            start,
            read,
            mods,
            image_for=_image_source(parts, read, symbolizer if images is None else images),
            stack_limits=_limits(parts, int(start.get(_SP[arch], 0) or 0)),
            exclude=[p for p in parameters if p],
            ktrap_frame=layout,
            function_name=_function_namer(symbolizer),
            frame_data=fpo,
        )

    walk = walk_from(regs)
    if trap is not None and trap[2] is None and out.started_from == "dump context":
        address = parameters[1] if len(parameters) > 1 else None
        reached = any(f.pc == address and f.trust != "scan" for f in walk.frames)
        if not reached:  # the walk did not unwind to the exception address: start at its trap frame
            walk = walk_from({**regs, **trap[0]})
            out.trap_frame = trap[1]
            out.started_from = "trap frame (found by the exception address, P2)"
    out.warnings.extend(walk.warnings)
    at = _trap_frame_addresses(walk, read, layout)
    if out.trap_frame is None and at:
        out.trap_frame = min(at.items())[1]
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
                trap_frame_at=at.get(f.index),
            )
        )
    out.frames = tuple(frames)
    out.kind = "unwound" if any(f.trust != "scan" for f in frames) else "scan"
    return out


def trap_context(
    parts: KernelParts, code: int | None, params: Sequence[int], layout: dict[str, int]
) -> tuple[dict[str, int], int, int | None] | None:
    """(registers, trap frame address, parameter index or None when found by the exception address) of the
    faulting _KTRAP_FRAME of 0x8E (P3) or 0x1E (searched; module docstring); None for other bug checks or when
    the trap frame is missing or implausible (its saved pc must be the exception address, P2)."""
    if code is None or parts.machine != Machine.AMD64:
        return None
    base = base_code(code)
    address = params[1] if len(params) > 1 else 0
    index = TRAP_FRAME_PARAMETER.get(base)
    read = _reader(parts)
    if index is not None and index <= len(params) and params[index - 1]:
        va = params[index - 1]
        regs = read_ktrap_frame(read, va, layout)
        in_module = regs is not None and any(d.base <= regs["rip"] < d.base + d.size for d in parts.drivers)
        if regs is not None and (regs["rip"] == address or in_module):
            return regs, va, index
        return None
    if base not in TRAP_FRAME_BY_EXCEPTION_ADDRESS or not address:
        return None
    got = trapframes.find_by_rip(parts.stack, parts.top_of_stack, read, layout, address)
    return (got[1], got[0], None) if got is not None else None


def _trap_frame_addresses(walk: StackWalk, read, layout: dict[str, int] | None) -> dict[int, int]:
    """Frame index → the address of the _KTRAP_FRAME that frame holds (frames marked ``trap_frame``)."""
    out: dict[int, int] = {}
    if layout is None:
        return out
    for f, nxt in zip(walk.frames, walk.frames[1:], strict=False):
        if f.trap_frame:
            va = trapframes.trap_frame_of(read, layout, f.sp, nxt.pc, nxt.sp)
            if va is not None:
                out[f.index] = va
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


def _frame_data_source(symbolizer: Symbolizer | None, given: FrameDataSource | None) -> FrameDataSource | None:
    """x86 FrameData per module: ``given``, else the symbolizer's ``frame_data`` (a SymbolContext's)."""
    if given is not None:
        return given
    offered = getattr(symbolizer, "frame_data", None)
    return offered if callable(offered) else None


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


def function_start(parts: KernelParts, base: int, address: int, *, images: object | None = None) -> int | None:
    """The RVA of the function holding ``address`` from the module's unwind data (resident in large dumps, else
    from ``images.image``, as :func:`unwound_stack`), or None."""
    read = _reader(parts)
    source = _image_source(parts, read, images)
    if source is None:
        return None
    try:
        img = source(Module("culprit", base, max(address - base + 1, 1)))
        table = img.exception_table() if img is not None else None
        fn = table.lookup(address - base) if table is not None else None
    except Exception:  # damaged image in memory: no function start, the bucket keeps the module alone
        return None
    return fn.begin if fn is not None else None
