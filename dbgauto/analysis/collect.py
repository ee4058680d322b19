"""Fill :class:`CrashFacts` from a dump (native reader or a debugger engine) or from a saved debugger log.

Native, small dump: the header, the triage sections and a stack scan. Native, large dump: the header, plus
drivers/stack/process from a small dump converted natively in a temporary folder when ``dbgauto.convert`` is
available (otherwise a warning says they need conversion). Engines ``cdb``/``dbgeng``: the debugger's own
``!analyze -v``, ``lm`` and ``k`` output, parsed like a saved log. Other parts are imported lazily so that
this module stays cheap and works while they are absent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from dbgauto.analysis.culprit import (
    MICROSOFT_DRIVER_STEMS,
    find_culprit,
    is_core_module,
    looks_third_party,
    module_basename,
)
from dbgauto.analysis.facts import (
    BugcheckFact,
    CrashFacts,
    CulpritFact,
    DriverFact,
    FrameFact,
    ParameterFact,
    SourceFact,
    StackFact,
    UnloadedDriverFact,
    source_fact,
)
from dbgauto.analysis.facts import describe_bugcheck as describe
from dbgauto.vocab.dumptypes import dump_type_meaning
from dbgauto.vocab.machines import machine_name

if TYPE_CHECKING:
    from dbgauto.analysis.parsers import ParsedLog

__all__ = [
    "ENGINE_COMMANDS",
    "MAX_SCAN_FRAMES",
    "facts_from_dump",
    "facts_from_engine",
    "facts_from_log",
    "facts_from_parsed",
]

log = logging.getLogger(__name__)

MAX_SCAN_FRAMES: Final = 64  # stack-scan hits listed in the facts (the culprit rule sees all of them)
ENGINE_COMMANDS: Final = ("vertarget", "!analyze -v", "lm", "kv")
_LARGE_NEEDS: Final = "drivers, process and stack need a small-dump conversion"


# --------------------------------------------------------------------------- native


def facts_from_dump(path: os.PathLike[str] | str, *, engine: str = "native") -> CrashFacts:
    """Facts for one dump file. ``engine``: ``native`` (default), or a debugger engine name (``cdb``, ``dbgeng``)."""
    if engine == "native":
        return _native_facts(Path(path))
    return facts_from_engine(path, engine)


def _native_facts(path: Path) -> CrashFacts:
    from dbgauto.kdump.reader import KernelDump  # lazy: the format layer is only needed for dumps

    with KernelDump.open(path) as dump:  # first: it raises the typed errors (not found, bad signature, ...)
        base = _header_facts(dump, source_fact(path))
        if dump.dump_type == 4:
            return _with_triage(base, dump.triage, warnings=dump.warnings)
        return _large_dump_facts(dump, base)


def _header_facts(dump: Any, src: SourceFact) -> dict[str, Any]:
    h = dump.header
    variety = getattr(dump, "variety", None)
    params = tuple(h.bugcheck_parameters or ())
    ctx = h.context
    exc = h.exception
    experimental: dict[str, Any] = {}
    if exc is not None:
        experimental["exception"] = {"code": f"{exc.code:#x}", "address": f"{exc.address:#x}", "flags": exc.flags}
    if h.suite_mask is not None:
        experimental["suite_mask"] = f"{h.suite_mask:#x}"
    if getattr(variety, "explanation", None):
        experimental["variety_explanation"] = variety.explanation
    return {
        "source": src,
        "variety": getattr(variety, "name", None),
        "dump_type": int(dump.dump_type),
        "dump_type_meaning": dump_type_meaning(int(dump.dump_type)),
        "machine": machine_name(dump.machine),
        "is_64bit": dump.is_64bit,
        "os_build": h.minor_version,
        "os_major": h.major_version,
        "product_type": h.product_type,
        "processors": h.number_processors,
        "crash_time": h.system_time.astimezone(UTC) if h.system_time else None,
        "uptime_seconds": h.system_uptime_100ns / 1e7 if h.system_uptime_100ns is not None else None,
        "bugcheck": describe(h.bugcheck_code, params) if h.bugcheck_code is not None else None,
        "pc": ctx.pc if ctx is not None else None,
        "comment": h.comment,
        "engine": "native",
        "engine_version": _version(),
        "experimental": experimental,
    }


def _version() -> str:
    from dbgauto import __version__

    return f"dbgauto {__version__}"


def _driver_fact(name: str | None, base: int, size: int, timestamp: int | None, checksum: int | None) -> DriverFact:
    path = name if name else None
    short = module_basename(name) if name else f"<unnamed@{base:x}>"
    return DriverFact(
        name=short,
        path=path,
        base=base,
        size=size,
        timestamp=timestamp,
        checksum=checksum,
        third_party=looks_third_party(name) if name else True,
    )


def _with_triage(base: dict[str, Any], tri: Any, *, warnings: Iterable[str]) -> CrashFacts:
    drivers = tuple(_driver_fact(d.name, d.base, d.size, d.timestamp, d.checksum) for d in tri.drivers)
    unloaded = tuple(UnloadedDriverFact(name=u.name, start=u.start, end=u.end) for u in tri.unloaded_drivers)
    hits = tri.stack_scan()
    frames = tuple(
        FrameFact(index=i, address=h.address, value=h.value, module=h.module, offset=h.offset)
        for i, h in enumerate(hits[:MAX_SCAN_FRAMES])
    )
    notes = [*warnings, *tri.warnings]
    experimental = {**base.get("experimental", {}), "stack_scan_hits": len(hits)}
    pc = tri.context.pc if tri.context is not None else base.get("pc")
    bugcheck: BugcheckFact | None = base.get("bugcheck")
    culprit = find_culprit(
        pc=pc,
        bugcheck_code=bugcheck.code if bugcheck else None,
        bugcheck_parameters=[p.value or 0 for p in bugcheck.parameters] if bugcheck else [],
        drivers=drivers,
        stack_values=[h.value for h in hits],
    )
    return CrashFacts(
        **{**base, "pc": pc, "experimental": experimental},
        culprit=culprit,
        process_name=tri.process_name,
        pid=tri.pid,
        tid=tri.tid,
        stack=StackFact(kind="scan", frames=frames),
        drivers=drivers,
        unloaded_drivers=unloaded,
        warnings=tuple(notes),
    )


def _large_dump_facts(dump: Any, base: dict[str, Any]) -> CrashFacts:
    """Header facts, plus drivers, process and stack gathered from the large dump as a small dump would hold them.

    ``dbgauto.convert.collect_parts`` finds the crashing processor, thread, stack and module lists; the parts
    are laid out as a small dump in memory (no file) and read back with the same code as a real small dump.
    """
    warnings = list(dump.warnings)
    try:
        from dbgauto.convert import collect_parts
        from dbgauto.convert.write import build_small_dump
        from dbgauto.kdump.triage import TriageDump
    except ImportError:
        return CrashFacts(**base, warnings=(*warnings, f"{_LARGE_NEEDS} (converter not available)"))
    from dbgauto.errors import DbgautoError

    try:
        parts = collect_parts(dump, data_blocks=False)
        data = build_small_dump(parts, dump.buffer).build()
        tri = TriageDump.parse_buffer(data, path=None, is_64bit=parts.is_64bit, machine=parts.machine)
    except DbgautoError as exc:
        log.info("%s: small-dump parts not collected: %s", dump.path, exc)
        return CrashFacts(**base, warnings=(*warnings, f"{_LARGE_NEEDS}: {exc}"))
    experimental = {**base["experimental"], "collection": "small-dump parts gathered from the large dump"}
    return _with_triage({**base, "experimental": experimental}, tri, warnings=[*warnings, *parts.warnings])


# --------------------------------------------------------------------------- engines


def facts_from_engine(path: os.PathLike[str] | str, engine_name: str) -> CrashFacts:
    """Run :data:`ENGINE_COMMANDS` in an engine session (``cdb``, ``kd``, ``dbgeng``, ``auto``, or the native
    engine's debugger emulation ``native``) and parse what it printed, as for a saved log."""
    path = Path(path)
    from dbgauto.engines.select import get_engine  # lazy: engines are optional on this host

    engine = get_engine(engine_name)
    blocks: list[str] = []
    version: str | None = None
    with engine.open(path) as session:
        for command in ENGINE_COMMANDS:
            result = session.run(command)
            version = version or result.debugger_version
            blocks.append(f"0: kd> {command}\n{result.output.rstrip()}\n")
    facts = facts_from_log("".join(blocks), source=path)
    header: dict[str, Any] = {}
    try:  # the file's own header fills what the debugger output may not show
        from dbgauto.kdump.reader import KernelDump

        with KernelDump.open(path) as dump:
            header = _header_facts(dump, facts.source or source_fact(path))
    except Exception as exc:  # the debugger opened it; our reader need not
        log.info("%s: native header not read: %s", path, exc)
    merged = {k: v for k, v in header.items() if v is not None and getattr(facts, k, None) in (None, {}, ())}
    merged.update(engine=getattr(engine, "name", engine_name), engine_version=version)
    return replace(facts, **merged)


# --------------------------------------------------------------------------- debugger logs


def facts_from_log(text: str, *, source: os.PathLike[str] | str | None = None) -> CrashFacts:
    """Facts from a saved cdb/kd/WinDbg console log (``!analyze -v``, ``lm``, ``k``, ``vertarget``, ...)."""
    from dbgauto.analysis.parsers import parse_log  # lazy: parsers are another part's module

    return facts_from_parsed(parse_log(text), source=source)


def _source(source: os.PathLike[str] | str | None) -> SourceFact | None:
    if source is None:
        return None
    p = Path(source)
    return source_fact(p) if p.is_file() else SourceFact(path=str(source))


def facts_from_parsed(parsed: ParsedLog, *, source: os.PathLike[str] | str | None = None) -> CrashFacts:
    """Map a :class:`ParsedLog` onto CrashFacts (stack kind ``symbolic``)."""
    banner, vt, an = parsed.banner, parsed.vertarget, parsed.analyze
    warnings: list[str] = [*parsed.warnings]
    os_info = (banner.os if banner else None) or (vt.os if vt else None)
    os_name = None
    if os_info is not None and os_info.name_reliable:  # else the parser has already warned
        os_name = os_info.raw
    arch = os_info.arch if os_info else None
    drivers, unloaded = _modules(parsed.modules)
    stack = _symbolic_stack(an.stack if an and an.stack else parsed.stack)
    bugcheck = _log_bugcheck(parsed)
    culprit = _log_culprit(parsed, drivers, bugcheck, warnings)

    def first(*values: Any) -> Any:
        return next((v for v in values if v is not None), None)

    if not (banner or vt or an or parsed.bugcheck or parsed.modules or parsed.stack):
        warnings.append("no debugger output recognised (no banner, !analyze, .bugcheck, vertarget, lm or k)")
    session_time = first(banner.debug_session_time if banner else None, vt.debug_session_time if vt else None)
    return CrashFacts(
        source=_source(source),
        variety=banner.dump_kind if banner else None,
        machine=_arch_name(arch),
        is_64bit=_is_64bit(arch, banner.kernel_base if banner else None),
        os_build=os_info.build if os_info else None,
        os_name=os_name,
        processors=os_info.processors if os_info else None,
        crash_time=session_time.astimezone(UTC) if session_time and session_time.tzinfo else session_time,
        uptime_seconds=first(banner.uptime_seconds if banner else None, vt.uptime_seconds if vt else None),
        bugcheck=bugcheck,
        culprit=culprit,
        process_name=an.process_name if an else None,
        stack=stack,
        drivers=drivers,
        unloaded_drivers=unloaded,
        engine="debugger-log",
        engine_version=banner.debugger_version if banner else None,
        raw_output=_raw_output(parsed),
        warnings=tuple(dict.fromkeys([*warnings, *(an.warnings if an else ())])),
        experimental=_log_experimental(parsed),
    )


def _arch_name(arch: str | None) -> str | None:
    if not arch:
        return None
    return {"amd64": "x64", "x64": "x64", "x86": "x86", "arm64": "ARM64"}.get(arch.lower(), arch)


def _is_64bit(arch: str | None, kernel_base: int | None) -> bool | None:
    if arch:
        return arch.lower() in ("x64", "amd64", "arm64")
    if kernel_base is not None:
        return kernel_base > 0xFFFFFFFF
    return None


def _log_bugcheck(parsed: ParsedLog) -> BugcheckFact | None:
    an, bc = parsed.analyze, parsed.bugcheck
    code = an.bugcheck_code if an and an.bugcheck_code is not None else (bc.code if bc else None)
    if code is None:
        return None
    params: Sequence[int] = an.parameters if an and an.arguments else (bc.parameters if bc else ())
    fact = describe(code, params)
    described = {a.index: a.description for a in an.arguments} if an else {}
    fixed = tuple(ParameterFact(p.index, p.value, p.meaning or described.get(p.index) or None) for p in fact.parameters)
    name = fact.name or (an.bugcheck_name if an else None)
    return BugcheckFact(fact.code, name, fact.variant_m, fixed, fact.summary or (an.description if an else None))


def _log_culprit(
    parsed: ParsedLog, drivers: Sequence[DriverFact], bugcheck: BugcheckFact | None, warnings: list[str]
) -> CulpritFact | None:
    """The debugger's own answer (``!analyze``: IMAGE_NAME / MODULE_NAME / "Probably caused by") comes first."""
    an = parsed.analyze
    named = an.culprit if an else None
    rule = "debugger-analyze"
    if named is None and parsed.banner and parsed.banner.probably_caused_by:
        named, rule = parsed.banner.probably_caused_by.image, "debugger-probably-caused-by"
    if named:
        drv = _driver_named(drivers, named)
        return CulpritFact(
            name=named,
            base=drv.base if drv else None,
            timestamp=drv.timestamp if drv else None,
            rule=rule,
            is_core=False,
        )
    if an and (an.image_name or an.module_name):
        warnings.append(f"!analyze named no image ({an.image_name or an.module_name})")
    if drivers and bugcheck:
        return find_culprit(
            pc=None,
            bugcheck_code=bugcheck.code,
            bugcheck_parameters=[p.value or 0 for p in bugcheck.parameters],
            drivers=drivers,
            stack_values=[fr.return_address for fr in parsed.stack if fr.return_address],
        )
    return None


def _driver_named(drivers: Sequence[DriverFact], name: str) -> DriverFact | None:
    stem = name.lower().rsplit(".", 1)[0]
    for d in drivers:
        if d.name.lower() == name.lower() or d.name.lower().rsplit(".", 1)[0] == stem:
            return d
    return None


def _modules(modules: Iterable[Any]) -> tuple[tuple[DriverFact, ...], tuple[UnloadedDriverFact, ...]]:
    loaded: list[DriverFact] = []
    unloaded: list[UnloadedDriverFact] = []
    for m in modules:
        if m.unloaded:
            unloaded.append(UnloadedDriverFact(name=m.image_name or m.name, start=m.start, end=m.end))
            continue
        name = m.image_name or m.name
        path = m.details.get("Image path") if m.details else None
        loaded.append(
            DriverFact(
                name=name,
                path=path,
                base=m.start,
                size=m.end - m.start if m.end and m.end >= m.start else None,
                third_party=_log_third_party(name, path),
            )
        )
    return tuple(loaded), tuple(unloaded)


def _log_third_party(name: str, path: str | None) -> bool:
    """The culprit module's heuristic; ``lm`` names have no extension (``nt``, ``myfault``): match the stem."""
    if path or "." in name:
        return looks_third_party(path or name)
    stem = name.lower().removeprefix("dump_")
    return not is_core_module(stem) and stem not in MICROSOFT_DRIVER_STEMS


def _symbolic_stack(frames: Sequence[Any]) -> StackFact | None:
    if not frames:
        return None
    out = []
    for i, fr in enumerate(frames):
        index = fr.index if fr.index is not None else i
        out.append(
            FrameFact(
                index=index,
                address=fr.child_sp,
                value=fr.return_address,
                module=fr.module,
                offset=fr.offset if fr.function is None else None,
                symbol=fr.call_site,
            )
        )
    return StackFact(kind="symbolic", frames=tuple(out))


def _raw_output(parsed: ParsedLog) -> dict[str, str]:
    out: dict[str, str] = {}
    for block in parsed.commands:
        key = block.command or ("(banner)" if block.prompt is None else block.prompt)
        if not block.output.strip() and not block.command:
            continue
        unique, n = key, 2
        while unique in out:
            unique, n = f"{key} ({n})", n + 1
        out[unique] = block.output
    return out


def _log_experimental(parsed: ParsedLog) -> dict[str, Any]:
    an = parsed.analyze
    x: dict[str, Any] = {}
    if an is not None:
        pairs = (
            ("failure_bucket_id", an.failure_bucket_id or an.bucket_id or an.default_bucket_id),
            ("symbol_name", an.symbol_name),
            ("analyze_style", an.style),
        )
        x.update({key: value for key, value in pairs if value})
    if parsed.banner and parsed.banner.kernel_base is not None:
        x["kernel_base"] = f"{parsed.banner.kernel_base:#x}"
    return x
