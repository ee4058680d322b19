"""Facts from a saved cdb/kd/WinDbg console log, or from what a debugger engine printed (parsed the same way)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbgauto.analysis.culprit import find_culprit
from dbgauto.analysis.facts import (
    BugcheckFact,
    CrashFacts,
    CulpritFact,
    DebuggerFact,
    DriverFact,
    FrameFact,
    ParameterFact,
    SourceFact,
    StackFact,
    UnloadedDriverFact,
    source_fact,
)
from dbgauto.analysis.facts import describe_bugcheck as describe
from dbgauto.debugtext import parse_hex, parse_session_time_local
from dbgauto.debugtext.analyze import FAILURE_CLASSES
from dbgauto.vocab.inbox import is_inbox

if TYPE_CHECKING:
    from dbgauto.debugtext import ParsedLog

__all__ = ["facts_from_log", "facts_from_parsed"]


def facts_from_log(text: str, *, source: os.PathLike[str] | str | None = None) -> CrashFacts:
    """Facts from a saved cdb/kd/WinDbg console log (``!analyze -v``, ``lm``, ``k``, ``vertarget``, ...)."""
    from dbgauto.debugtext import parse_log

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
    debugger = _debugger_fact(parsed)
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
        debugger=debugger,
    )


def _arch_name(arch: str | None) -> str | None:
    """The OS line's architecture as dbgauto names machines (``ARM 64-bit (AArch64)`` → ``ARM64``)."""
    if not arch:
        return None
    key = arch.lower()
    if "aarch64" in key or "arm64" in key or key.startswith("arm 64"):
        return "ARM64"
    return {"amd64": "x64", "x64": "x64", "x86": "x86", "x86 compatible": "x86"}.get(key, arch)


def _is_64bit(arch: str | None, kernel_base: int | None) -> bool | None:
    if arch:
        return _arch_name(arch) in ("x64", "ARM64")
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
    fixed = tuple(
        ParameterFact(p.index, p.value, p.meaning or described.get(p.index) or None, described.get(p.index) or None)
        for p in fact.parameters
    )
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
        if named.lower() in FAILURE_CLASSES:  # "Probably caused by : memory_corruption": a class, not a module
            named = None
    if named:
        drv = _driver_named(drivers, named)
        address = _ip_address(an.fields.get("FOLLOWUP_IP")) if an else None
        if address is None and an:
            address = _ip_address(an.fields.get("FAULTING_IP"))
        function, offset = _symbol_parts(an.symbol_name if an else None)
        if function is None and parsed.banner and parsed.banner.probably_caused_by:
            function, offset = _symbol_parts(parsed.banner.probably_caused_by.symbol)
        if offset is None and an:
            offset = parse_hex(an.fields.get("BUCKET_ID_FUNC_OFFSET"))
        if offset is None and address is not None and drv is not None and drv.contains(address):
            offset = address - (drv.base or 0)
        timestamp = drv.timestamp if drv else None
        if timestamp is None and an:
            timestamp = parse_hex(
                _first_line(an.fields.get("DEBUG_FLR_IMAGE_TIMESTAMP") or an.fields.get("IMAGE_TIMESTAMP"))
            )
        return CulpritFact(
            name=named,
            base=drv.base if drv else None,
            offset=offset,
            timestamp=timestamp or None,
            rule=rule,
            address=address,
            is_core=False,
            function=function,
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


def _first_line(value: str | None) -> str | None:
    if not value:
        return None
    return value.strip().split("\n", 1)[0].strip() or None


def _ip_address(value: str | None) -> int | None:
    """``FOLLOWUP_IP`` / ``FAULTING_IP``: a symbol line, then ``address bytes instruction`` (the address first)."""
    if not value:
        return None
    for line in value.splitlines():
        words = line.split()
        if len(words) >= 2:
            address = parse_hex(words[0])
            if address is not None:
                return address
    return None


def _symbol_parts(symbol: str | None) -> tuple[str | None, int | None]:
    """``MyDriver!KeBugCheckTest+0x2b`` → (``KeBugCheckTest``, 0x2b); ``mydriver+199e`` → (None, 0x199e)."""
    if not symbol:
        return None, None
    text = symbol.strip().split()[0]
    base, plus, off = text.partition("+")
    offset = parse_hex(off) if plus else None
    function = base.split("!", 1)[1] if "!" in base else None
    return function or None, offset


def _debugger_fact(parsed: ParsedLog) -> DebuggerFact | None:
    """Every fact the log states that CrashFacts' common fields do not hold, as printed."""
    banner, vt, an = parsed.banner, parsed.vertarget, parsed.analyze
    fields = an.fields if an else {}

    def field(*names: str) -> str | None:
        for name in names:
            value = _first_line(fields.get(name))
            if value:
                return value
        return None

    system = [x for x in (banner, vt) if x is not None]
    raw_time = next((x.debug_session_time_raw for x in system if x.debug_session_time_raw), None)
    local = None
    if raw_time and not any(x.debug_session_time for x in system):
        naive = parse_session_time_local(raw_time)
        local = naive.isoformat() if naive else None
    irql = field("CURRENT_IRQL")
    attributes = field("DUMP_FILE_ATTRIBUTES")
    exc = parsed.exception
    fact = DebuggerFact(
        dump_file=banner.dump_file if banner else None,
        file_in_cab=field("FILE_IN_CAB"),
        dump_file_attributes=parse_hex(attributes.split()[0]) if attributes else None,
        build_lab=next((x.build_lab for x in system if x.build_lab), None) or field("BUILDLAB_STR"),
        product=next((x.product for x in system if x.product), None),
        suite=next((x.suite for x in system if x.suite), ()),
        cpu=parsed.cpu,
        current_irql=parse_hex(irql.split()[0]) if irql else None,
        session_time_raw=raw_time,
        session_time_local=local,
        failure_class=(an.failure_class if an else None) or _banner_failure_class(banner),
        failure_bucket_id=field("FAILURE_BUCKET_ID"),
        default_bucket_id=field("DEFAULT_BUCKET_ID"),
        bucket_id=field("BUCKET_ID"),
        bucket_id_func_offset=parse_hex(field("BUCKET_ID_FUNC_OFFSET")),
        failure_id_hash=field("FAILURE_ID_HASH"),
        symbol_name=field("SYMBOL_NAME"),
        module_name=field("MODULE_NAME"),
        image_name=field("IMAGE_NAME"),
        image_timestamp=parse_hex(field("DEBUG_FLR_IMAGE_TIMESTAMP", "IMAGE_TIMESTAMP")),
        image_version=field("IMAGE_VERSION", "DEBUG_FLR_IMAGE_VERSION"),
        followup_ip=_ip_address(fields.get("FOLLOWUP_IP")),
        faulting_ip=_ip_address(fields.get("FAULTING_IP")),
        followup=(an.followup if an else None) or (banner.followup if banner else None),
        exception_code=exc.code if exc else None,
        exception_address=exc.address if exc else None,
    )
    return None if fact == DebuggerFact() else fact


def _banner_failure_class(banner: Any) -> str | None:
    cause = banner.probably_caused_by if banner is not None else None
    return cause.image.lower() if cause is not None and cause.image.lower() in FAILURE_CLASSES else None


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
    """Not an inbox Windows module (:func:`dbgauto.vocab.inbox.is_inbox` also takes ``lm``'s extensionless names)."""
    return not is_inbox(path or name)


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
    next_n: dict[str, int] = {}  # per key, the next suffix to try: a log repeating one command stays linear
    for block in parsed.commands:
        key = block.command or ("(banner)" if block.prompt is None else block.prompt)
        if not block.output.strip() and not block.command:
            continue
        unique, n = key, next_n.get(key, 2)
        if unique in out:
            unique = f"{key} ({n})"
            while unique in out:
                n += 1
                unique = f"{key} ({n})"
            n += 1
        next_n[key] = n
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
