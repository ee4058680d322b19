"""Facts of a dump read natively: the header, plus the crash's KernelParts (drivers, stack, process, identity).

The parts come from :func:`dbgauto.kernel.open.read_parts`, read once per dump by the caller (a native engine
session, a batch task), so facts, conversion and verification share one walk of the kernel.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from dbgauto.analysis.bucket import bucket_id, failure_class
from dbgauto.analysis.culprit import PLUMBING_FRAMES_BY_POSITION, find_culprit, module_basename
from dbgauto.analysis.facts import (
    BugcheckFact,
    CrashFacts,
    DriverFact,
    FrameFact,
    SourceFact,
    StackFact,
    UnloadedDriverFact,
)
from dbgauto.analysis.facts import describe_bugcheck as describe
from dbgauto.analysis.naming import Symbolizer
from dbgauto.analysis.stack import function_start, unwound_stack
from dbgauto.analysis.summary import header_facts as summary_header_facts
from dbgauto.analysis.summary import summarize
from dbgauto.kernel.identity import identity_of
from dbgauto.kernel.irql import debugger_saved_irql
from dbgauto.kernel.stackscan import ModuleIndex, scan_stack
from dbgauto.util.memo import KEPT_TEXT
from dbgauto.vocab.bugchecks import base_code
from dbgauto.vocab.inbox import is_inbox

if TYPE_CHECKING:
    from dbgauto.kdump.reader import KernelDump
    from dbgauto.kdump.records import LoadedDriver
    from dbgauto.kernel.parts import KernelParts
    from dbgauto.symbols.context import SymbolContext
    from dbgauto.unwind.walk import FrameDataSource

__all__ = ["IRQL_PARAMETER", "MAX_SCAN_FRAMES", "facts_from_parts", "header_facts"]

log = logging.getLogger(__name__)

MAX_SCAN_FRAMES: Final = 64  # stack-scan hits listed in the facts (the culprit rule sees all of them)
# bug check base code → 1-based parameter holding the IRQL at the time of the fault (bug check reference)
IRQL_PARAMETER: Final[dict[int, int]] = {0x0A: 2, 0xD1: 2, 0xC5: 2, 0xD0: 2, 0x4A: 1}
_LARGE_NEEDS: Final = "drivers, process and stack need a small-dump conversion"


def header_facts(dump: KernelDump, src: SourceFact | None, *, engine: str = "native") -> dict[str, Any]:
    """CrashFacts fields the dump header alone gives (also used to complete a debugger's answers): the
    dump summary's words (:func:`dbgauto.analysis.summary.header_facts`) plus bug check, PC and provenance."""
    h = dump.header
    params = tuple(h.bugcheck_parameters or ())
    ctx = h.context
    return {
        **summary_header_facts(summarize(dump)),
        "source": src,
        "bugcheck": describe(h.bugcheck_code, params) if h.bugcheck_code is not None else None,
        "pc": ctx.pc if ctx is not None else None,
        "engine": engine,
        "engine_version": _version(),
    }


def _version() -> str:
    from dbgauto.version import __version__

    return f"dbgauto {__version__}"


def _driver_fact(d: LoadedDriver) -> DriverFact:
    """One driver entry as a fact. What its name decides (the module name, inbox or not) is the same in every
    dump that lists it and is worked out once per process (:func:`_named`); the base differs with every boot."""
    if not d.name:
        return DriverFact(f"<unnamed@{d.base:x}>", None, d.base, d.size, d.timestamp, d.checksum, True)
    name, third_party = _named(d.name) if len(d.name) <= KEPT_TEXT else _named.__wrapped__(d.name)
    return DriverFact(name, d.name, d.base, d.size, d.timestamp, d.checksum, third_party)


@functools.lru_cache(maxsize=4096)
def _named(path: str) -> tuple[str, bool]:
    """(module name, third party) of a driver's NT path."""
    return module_basename(path), not is_inbox(path)


def facts_from_parts(
    dump: KernelDump,
    parts: KernelParts | None,
    *,
    source: SourceFact | None,
    missing: str | None = None,
    warnings: Iterable[str] = (),
    symbolizer: Symbolizer | None = None,
    symbols: SymbolContext | None = None,
) -> CrashFacts:
    """Facts of ``dump`` from its header and ``parts`` (None when the parts could not be read: ``missing`` says
    why, and the facts carry the header alone). ``symbolizer`` names code addresses (module+offset without);
    ``symbols``, the dump's symbol context, serves as the symbolizer when it identified a table, and adds identity
    from the table's types and ``x_symbols`` (:func:`dbgauto.analysis.symbolized.apply_symbols`)."""
    if symbols is not None and symbols.table is not None and symbolizer is None:
        symbolizer = symbols
    facts = _facts_from_parts(
        dump,
        parts,
        source=source,
        missing=missing,
        warnings=warnings,
        symbolizer=symbolizer,
        images=symbols,
        frame_data=symbols.frame_data if symbols is not None else None,
    )
    if symbols is None:
        return facts
    from dbgauto.analysis.symbolized import apply_symbols

    return apply_symbols(facts, symbols, parts)


def _facts_from_parts(
    dump: KernelDump,
    parts: KernelParts | None,
    *,
    source: SourceFact | None,
    missing: str | None,
    warnings: Iterable[str],
    symbolizer: Symbolizer | None,
    images: SymbolContext | None = None,
    frame_data: FrameDataSource | None = None,
) -> CrashFacts:
    base = header_facts(dump, source)
    notes = [*dump.warnings, *warnings]
    bugcheck: BugcheckFact | None = base.get("bugcheck")
    code = bugcheck.code if bugcheck else None
    params = [p.value or 0 for p in bugcheck.parameters] if bugcheck else []
    irql = _irql(code, params)
    if parts is None:
        if missing:
            notes.append(f"{_LARGE_NEEDS}: {missing}")
        return CrashFacts(**base, current_irql=irql, warnings=tuple(dict.fromkeys(notes)))
    if dump.dump_type != 4:
        base["experimental"] = {**base["experimental"], "collection": "small-dump parts gathered from the large dump"}
    drivers = tuple(_driver_fact(d) for d in parts.drivers)
    unloaded = tuple(UnloadedDriverFact(name=u.name, start=u.start, end=u.end) for u in parts.unloaded_drivers or ())
    walked = unwound_stack(
        parts, bugcheck_code=code, parameters=params, symbolizer=symbolizer, images=images, frame_data=frame_data
    )
    experimental = dict(base["experimental"])
    if walked.frames:
        stack = StackFact(kind=walked.kind, frames=walked.frames)
        experimental["stack_context"] = walked.started_from
        if walked.trap_frame is not None:
            experimental["trap_frame"] = f"{walked.trap_frame:#x}"
        notes.extend(f"stack: {w}" for w in walked.warnings[:8])
    else:  # no context to start from: the plain scan
        hits = scan_stack(parts.stack, parts.top_of_stack, ModuleIndex(parts.drivers), parts.pointer_size)
        frames = tuple(
            FrameFact(index=i, address=h.address, value=h.value, module=h.module, offset=h.offset)
            for i, h in enumerate(hits[:MAX_SCAN_FRAMES])
        )
        stack = StackFact(kind="scan", frames=frames)
        experimental["stack_scan_hits"] = len(hits)
    pc = parts.context.pc if parts.context is not None else base.get("pc")
    who = identity_of(parts)
    from_exception = walked.from_fault
    culprit = find_culprit(
        bugcheck_code=code,
        bugcheck_parameters=params,
        drivers=drivers,
        frames=stack.frames,
        pc=pc,
        process_name=who.process_name,
        symbolizer=symbolizer,
        read=parts.memory.read if parts.memory is not None else None,
        pointer_size=parts.pointer_size,
        plumbing_by_position=0 if from_exception else PLUMBING_FRAMES_BY_POSITION,
    )
    start = None
    if culprit is not None and culprit.function is None and culprit.address is not None and culprit.base is not None:
        start = function_start(parts, culprit.base, culprit.address, images=images)
    if who.method:
        experimental["identity_method"] = who.method
    saved = debugger_saved_irql(parts.prcb, parts.machine, parts.build, _table_offset(symbolizer))
    if saved is not None:
        irql = saved
        experimental["irql_source"] = "KPRCB.DebuggerSavedIRQL"
    elif irql is not None:
        experimental["irql_source"] = f"parameter {IRQL_PARAMETER[base_code(code or 0)]}"
    cpu = parts.processor
    n = base.get("processors")
    return CrashFacts(
        **{**base, "pc": pc, "experimental": experimental},
        culprit=culprit,
        bucket_id=bucket_id(code, culprit, function_start=start) if code is not None else None,
        failure_class=failure_class(culprit) if code is not None else None,
        current_irql=irql,
        faulting_cpu=cpu if cpu is not None and (n is None or cpu < n) else None,
        process_name=who.process_name,
        pid=who.pid,
        tid=who.tid,
        stack=stack,
        drivers=drivers,
        unloaded_drivers=unloaded,
        warnings=tuple(dict.fromkeys([*notes, *parts.warnings])),
    )


def _table_offset(symbolizer: Symbolizer | None) -> int | None:
    """``_KPRCB.DebuggerSavedIRQL``'s offset from the symbolizer's table (a SymbolContext), else None."""
    type_of = getattr(symbolizer, "type", None)
    if not callable(type_of):
        return None
    try:
        info = type_of("_KPRCB")
    except Exception:  # a symbol source is outside our control: the per-build offsets serve
        return None
    field = getattr(info, "fields", {}).get("DebuggerSavedIRQL") if info is not None else None
    off = getattr(field, "offset", None)
    return off if isinstance(off, int) and off >= 0 else None


def _irql(code: int | None, params: list[int]) -> int | None:
    """The IRQL a bug check parameter records (:data:`IRQL_PARAMETER`), when it is a valid IRQL (0..31)."""
    index = IRQL_PARAMETER.get(base_code(code)) if code is not None else None
    if index is None or index > len(params):
        return None
    value = params[index - 1]
    return value if 0 <= value <= 31 else None
