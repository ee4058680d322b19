"""CrashFacts: what one crash dump (or one saved debugger log) tells us, as frozen dataclasses.

Analysis fills this model from any engine; every renderer (HTML, Markdown, text, JSON, CSV) reads only
this model. The JSON form (``docs/report-schema.md``) is written by the one declarative codec,
``dbgauto.util.codec``, from the field types below: every field may be absent (``None`` / empty), fields
typed ``Hex`` (addresses, codes, timestamps, checksums) are ``"0x…"`` strings (JSON numbers lose precision
above 2**53), and experimental fields carry an ``x_`` prefix. ``CrashFacts.from_dict(facts.to_dict()) == facts``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final

from dbgauto.util.codec import KEEP, Extras, Hex, from_json, hex_or_none, to_json
from dbgauto.util.frozen import fast_init
from dbgauto.vocab.bugchecks import is_m_variant, lookup
from dbgauto.vocab.products import product_type_name

__all__ = [
    "FINGERPRINT_PART",
    "LEGACY_FINGERPRINT_BYTES",
    "SCHEMA",
    "BugcheckFact",
    "CrashFacts",
    "CulpritFact",
    "DebuggerFact",
    "DriverFact",
    "FrameFact",
    "ParameterFact",
    "SourceFact",
    "StackFact",
    "UnloadedDriverFact",
    "describe_bugcheck",
    "fingerprint",
    "first_mib_digest",
    "parameters_from",
    "source_fact",
]

SCHEMA: Final = "dbgauto.crashfacts/1"
FINGERPRINT_PART: Final = 64 << 10  # the head and the tail hashed by :func:`fingerprint` (plus the size)
LEGACY_FINGERPRINT_BYTES: Final = 1 << 20  # the identity hash catalogs recorded before (:func:`first_mib_digest`)

# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class SourceFact:
    """The file the facts come from. ``sha256_head_tail_plus_size``: see :func:`fingerprint`."""

    path: str
    size: int | None = None
    sha256_head_tail_plus_size: str | None = None
    mtime: datetime | None = None

    @property
    def name(self) -> str:
        """The file name, for paths written on Windows or POSIX alike."""
        return self.path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or self.path


def source_fact(path: os.PathLike[str] | str, *, digest: str | None = None) -> SourceFact:
    """Describe a file: size, mtime (UTC) and an identity hash that does not read the whole dump.

    The hash is :func:`fingerprint`'s. A caller that has already hashed the file passes ``digest`` (the file is
    hashed once per task).
    """
    p = Path(path)
    st = p.stat()
    return SourceFact(
        path=str(p),
        size=st.st_size,
        sha256_head_tail_plus_size=digest if digest is not None else fingerprint(p, st.st_size),
        mtime=datetime.fromtimestamp(st.st_mtime, UTC),
    )


def fingerprint(path: os.PathLike[str] | str, size: int | None = None) -> str:
    """SHA-256 (hex) over the first 64 KiB of ``path``, the last 64 KiB of what follows them (all of it when
    shorter), then ``size`` (the file's, by default) as 8 bytes LE.

    The one identity hash of a dump: the facts' ``sha256_head_tail_plus_size`` and the batch catalog's
    ``sha256-ht:`` hash are this digest. The head holds every header (crash time to 100 ns, bug check, context,
    run list or bitmap start): two crashes differ there. The tail tells a finished copy from one still being
    written (copy tools set the size first and write in order). Why not more: docs/scheduling.md.
    """
    return _digest(path, size, FINGERPRINT_PART, FINGERPRINT_PART)


def first_mib_digest(path: os.PathLike[str] | str, size: int | None = None) -> str:
    """The identity hash catalogs recorded before ``sha256-ht`` (SHA-256 over the first MiB, then the size as 8
    bytes LE): kept only to recognise a dump recorded with it (``sha256-1m:``) without processing it again."""
    return _digest(path, size, LEGACY_FINGERPRINT_BYTES, 0)


def _digest(path: os.PathLike[str] | str, size: int | None, head: int, tail: int) -> str:
    """SHA-256 of the first ``head`` bytes, the last ``tail`` bytes after them, then the size as 8 bytes LE."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        if size is None:
            size = os.fstat(fh.fileno()).st_size
        digest.update(fh.read(head))
        if tail and size > head:
            start = max(head, size - tail)
            fh.seek(start)
            digest.update(fh.read(size - start))
    digest.update(size.to_bytes(8, "little"))
    return digest.hexdigest()


@fast_init
@dataclass(frozen=True, slots=True)
class ParameterFact:
    """One bug check parameter (index 1..4), with its documented meaning when the reference has one."""

    index: int
    value: Hex | None
    meaning: str | None = None
    log_text: str | None = None  # what a debugger log printed beside the value (``Arg1: ..., <text>``), kept as is


@dataclass(frozen=True, slots=True)
class BugcheckFact:
    """The stop code: number, reference name, whether it is an ``_M`` variant, and the four parameters."""

    code: Hex
    name: str | None = None
    variant_m: bool = False
    parameters: tuple[ParameterFact, ...] = ()
    summary: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", tuple(self.parameters))

    @property
    def code_text(self) -> str:
        """As WinDbg prints it in the bugcheck analysis: ``0x1000007E``."""
        return f"0x{self.code:X}"


@dataclass(frozen=True, slots=True)
class CulpritFact:
    """The probable culprit and the rule (see ``dbgauto.analysis.culprit``) that chose it, with its evidence.

    ``name``: the image file name (``amdppm.sys``), or the process image for process-attributed bug checks, or
    ``hardware`` / ``memory_corruption``. ``module``: the debugger's module name (``amdppm``, ``nt``).
    ``offset``: from ``function``'s start when ``function`` is known, else from the module ``base``.
    ``evidence``: the reason in words (``the exception address lies in amdppm.sys``)."""

    name: str
    base: Hex | None = None
    offset: Hex | None = None
    timestamp: Hex | None = None
    rule: str | None = None
    address: Hex | None = None
    is_core: bool = False
    module: str | None = None
    function: str | None = None  # the function inside the module, when symbols or a debugger named one
    evidence: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class FrameFact:
    """One stack frame.

    ``scan``: ``address`` is the stack slot, ``value`` the code address found there. ``unwound``: ``address`` is
    the frame's stack pointer (Child-SP), ``value`` its instruction pointer (a return address after frame 0),
    ``trust`` how it was found (``context``, ``cfi``, ``frame-pointer``, ``scan``). ``symbolic``: ``address`` is
    the frame's Child-SP (or ChildEBP), ``value`` the return address, ``symbol`` the call site. ``offset`` is from
    ``function``'s start when ``function`` is known, else from the module base.
    """

    index: int
    address: Hex | None = None
    value: Hex | None = None
    module: str | None = None
    offset: Hex | None = None
    symbol: str | None = None
    trust: str | None = None
    function: str | None = None
    trap_frame: bool = False  # the next frame is the context this frame's _KTRAP_FRAME saved ("TrapFrame @")
    trap_frame_at: Hex | None = None  # that _KTRAP_FRAME's address, when located (WinDbg's "TrapFrame @ ADDR")

    @property
    def location(self) -> str:
        """``symbol`` if known, else ``module+0xoffset``, else the raw value."""
        if self.symbol:
            return self.symbol
        if self.module is not None and self.function:
            site = f"{self.module}!{self.function}"
            return f"{site}+{self.offset:#x}" if self.offset else site
        if self.module is not None:
            return f"{self.module}+{self.offset:#x}" if self.offset is not None else self.module
        return hex_or_none(self.value) or ""


@dataclass(frozen=True, slots=True)
class StackFact:
    """The crashing thread's stack: ``unwound`` (frames from the unwinder, each with its ``trust``; at least one
    not found by scanning), ``scan`` (code addresses found on the raw stack) or ``symbolic`` (a debugger's)."""

    kind: str = "scan"
    frames: Annotated[tuple[FrameFact, ...], KEEP] = ()  # always written, even empty

    def __post_init__(self) -> None:
        object.__setattr__(self, "frames", tuple(self.frames))


@fast_init
@dataclass(frozen=True, slots=True)
class DriverFact:
    """A loaded module. ``third_party``: not an inbox Windows module (``dbgauto.vocab.inbox.is_inbox``)."""

    name: str
    path: str | None = None
    base: Hex | None = None
    size: Hex | None = None
    timestamp: Hex | None = None
    checksum: Hex | None = None
    third_party: bool = False

    @property
    def end(self) -> int | None:
        return None if self.base is None or self.size is None else self.base + self.size

    def contains(self, address: int) -> bool:
        return self.base is not None and self.size is not None and self.base <= address < self.base + self.size


@fast_init
@dataclass(frozen=True, slots=True)
class UnloadedDriverFact:
    """A recently unloaded driver and the address range it occupied."""

    name: str
    start: Hex | None = None
    end: Hex | None = None


@dataclass(frozen=True, slots=True)
class DebuggerFact:
    """What a debugger's own output states beyond the common facts (``report --from-log``, cdb/DbgEng sessions).

    Values are as the debugger printed them: bucket strings, the build lab, the original dump's name. Addresses
    and hex values (``FOLLOWUP_IP``, ``DEBUG_FLR_IMAGE_TIMESTAMP``, ``DUMP_FILE_ATTRIBUTES``) are ``Hex``.
    ``failure_class`` holds what ``!analyze`` names instead of a module (``memory_corruption``, ``hardware``...).
    ``session_time_local`` is the debug session time as printed when it carries no time zone (XP-era WinDbg), so
    it cannot be a UTC ``crash_time``.
    """

    dump_file: str | None = None
    file_in_cab: str | None = None
    dump_file_attributes: Hex | None = None
    build_lab: str | None = None
    product: str | None = None
    suite: tuple[str, ...] = ()
    cpu: int | None = None
    current_irql: int | None = None
    session_time_raw: str | None = None
    session_time_local: str | None = None
    failure_class: str | None = None
    failure_bucket_id: str | None = None
    default_bucket_id: str | None = None
    bucket_id: str | None = None
    bucket_id_func_offset: Hex | None = None
    failure_id_hash: str | None = None
    symbol_name: str | None = None
    module_name: str | None = None
    image_name: str | None = None
    image_timestamp: Hex | None = None
    image_version: str | None = None
    followup_ip: Hex | None = None
    faulting_ip: Hex | None = None
    followup: str | None = None
    exception_code: Hex | None = None
    exception_address: Hex | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "suite", tuple(self.suite))


@dataclass(frozen=True, slots=True)
class CrashFacts:
    """Everything dbgauto knows about one crash. Every field may be absent; see docs/report-schema.md."""

    JSON_SCHEMA: ClassVar[str] = SCHEMA
    source: SourceFact | None = None
    variety: str | None = None
    dump_type: int | None = None
    dump_type_meaning: str | None = None
    machine: str | None = None
    is_64bit: bool | None = None
    os_build: int | None = None
    os_major: int | None = None
    os_name: str | None = None
    product_type: int | None = None
    processors: int | None = None
    crash_time: datetime | None = None
    uptime_seconds: float | None = None
    bugcheck: BugcheckFact | None = None
    pc: Hex | None = None
    culprit: CulpritFact | None = None
    bucket_id: str | None = None
    failure_class: str | None = None
    current_irql: int | None = None
    faulting_cpu: int | None = None
    process_name: str | None = None
    pid: int | None = None
    tid: int | None = None
    stack: StackFact | None = None
    drivers: tuple[DriverFact, ...] = ()
    unloaded_drivers: tuple[UnloadedDriverFact, ...] = ()
    engine: str | None = None
    engine_version: str | None = None
    comment: str | None = None
    raw_output: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    experimental: Annotated[Mapping[str, Any], Extras("x_")] = field(default_factory=dict)
    debugger: DebuggerFact | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "drivers", tuple(self.drivers))
        object.__setattr__(self, "unloaded_drivers", tuple(self.unloaded_drivers))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "raw_output", dict(self.raw_output))
        object.__setattr__(self, "experimental", {_strip_x(k): v for k, v in dict(self.experimental).items()})

    # ------------------------------------------------------------------ conveniences for renderers

    @property
    def title(self) -> str:
        """A short name for the dump: its file name, else "crash"."""
        return self.source.name if self.source is not None else "crash"

    @property
    def product_type_name(self) -> str | None:
        return product_type_name(self.product_type)

    @property
    def unwound_frames(self) -> tuple[FrameFact, ...]:
        """The frames a reader should see by default: every frame not found by scanning (all, for a scan)."""
        if self.stack is None:
            return ()
        if self.stack.kind != "unwound":
            return self.stack.frames
        return tuple(f for f in self.stack.frames if f.trust != "scan")

    @property
    def culprit_driver(self) -> DriverFact | None:
        """The loaded-driver entry the culprit names (for highlighting), if any."""
        if self.culprit is None:
            return None
        for drv in self.drivers:
            if drv.base is not None and drv.base == self.culprit.base and drv.name == self.culprit.name:
                return drv
        return None

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON schema (docs/report-schema.md), written by the codec; absent fields are omitted."""
        return to_json(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CrashFacts:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, ``x_*`` keys land in ``experimental``."""
        return from_json(cls, d)


def _strip_x(key: str) -> str:
    return key[2:] if key.startswith("x_") else key


def parameters_from(values: Sequence[int | None], meanings: Sequence[str | None] = ()) -> tuple[ParameterFact, ...]:
    """Four (or fewer) raw parameters with their meanings, numbered from 1."""
    return tuple(
        ParameterFact(index=i + 1, value=v, meaning=meanings[i] if i < len(meanings) else None)
        for i, v in enumerate(values)
    )


def describe_bugcheck(code: int, parameters: Sequence[int | None]) -> BugcheckFact:
    """A :class:`BugcheckFact` for ``code``: the reference's name and summary, each parameter's meaning attached."""
    info = lookup(code)
    return BugcheckFact(
        code=code,
        name=info.name if info else None,
        variant_m=is_m_variant(code),
        parameters=parameters_from(parameters, info.parameters if info else ()),
        summary=info.summary if info else None,
    )
