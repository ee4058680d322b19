"""Facts of a dump read natively: the header, plus the crash's KernelParts (drivers, stack, process, identity).

The parts come from :func:`dbgauto.kernel.open.read_parts`, read once per dump by the caller (a native engine
session, a batch task), so facts, conversion and verification share one walk of the kernel.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from dbgauto.analysis.culprit import find_culprit, looks_third_party, module_basename
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
from dbgauto.analysis.summary import header_facts as summary_header_facts
from dbgauto.analysis.summary import summarize
from dbgauto.kernel.identity import identity_of
from dbgauto.kernel.stackscan import ModuleIndex, scan_stack

if TYPE_CHECKING:
    from dbgauto.kdump.reader import KernelDump
    from dbgauto.kdump.records import LoadedDriver
    from dbgauto.kernel.parts import KernelParts
    from dbgauto.symbols.context import SymbolContext

__all__ = ["MAX_SCAN_FRAMES", "facts_from_parts", "header_facts"]

log = logging.getLogger(__name__)

MAX_SCAN_FRAMES: Final = 64  # stack-scan hits listed in the facts (the culprit rule sees all of them)
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
    return DriverFact(
        name=module_basename(d.name) if d.name else f"<unnamed@{d.base:x}>",
        path=d.name or None,
        base=d.base,
        size=d.size,
        timestamp=d.timestamp,
        checksum=d.checksum,
        third_party=looks_third_party(d.name) if d.name else True,
    )


def facts_from_parts(
    dump: KernelDump,
    parts: KernelParts | None,
    *,
    source: SourceFact | None,
    missing: str | None = None,
    warnings: Iterable[str] = (),
    symbols: SymbolContext | None = None,
) -> CrashFacts:
    """Facts of ``dump`` from its header and ``parts`` (None when the parts could not be read: ``missing`` says
    why, and the facts carry the header alone). ``symbols``: the dump's symbol context (frame names, identity
    from the table's types, ``x_symbols``), applied by :func:`dbgauto.analysis.symbolized.apply_symbols`."""
    facts = _facts_from_parts(dump, parts, source=source, missing=missing, warnings=warnings)
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
) -> CrashFacts:
    base = header_facts(dump, source)
    notes = [*dump.warnings, *warnings]
    if parts is None:
        if missing:
            notes.append(f"{_LARGE_NEEDS}: {missing}")
        return CrashFacts(**base, warnings=tuple(dict.fromkeys(notes)))
    if dump.dump_type != 4:
        base["experimental"] = {**base["experimental"], "collection": "small-dump parts gathered from the large dump"}
    drivers = tuple(_driver_fact(d) for d in parts.drivers)
    unloaded = tuple(UnloadedDriverFact(name=u.name, start=u.start, end=u.end) for u in parts.unloaded_drivers or ())
    hits = scan_stack(parts.stack, parts.top_of_stack, ModuleIndex(parts.drivers), parts.pointer_size)
    frames = tuple(
        FrameFact(index=i, address=h.address, value=h.value, module=h.module, offset=h.offset)
        for i, h in enumerate(hits[:MAX_SCAN_FRAMES])
    )
    experimental = {**base["experimental"], "stack_scan_hits": len(hits)}
    pc = parts.context.pc if parts.context is not None else base.get("pc")
    bugcheck: BugcheckFact | None = base.get("bugcheck")
    culprit = find_culprit(
        pc=pc,
        bugcheck_code=bugcheck.code if bugcheck else None,
        bugcheck_parameters=[p.value or 0 for p in bugcheck.parameters] if bugcheck else [],
        drivers=drivers,
        stack_values=[h.value for h in hits],
    )
    who = identity_of(parts)
    return CrashFacts(
        **{**base, "pc": pc, "experimental": experimental},
        culprit=culprit,
        process_name=who.process_name,
        pid=who.pid,
        tid=who.tid,
        stack=StackFact(kind="scan", frames=frames),
        drivers=drivers,
        unloaded_drivers=unloaded,
        warnings=tuple(dict.fromkeys([*notes, *parts.warnings])),
    )
