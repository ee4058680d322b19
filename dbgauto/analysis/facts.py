"""CrashFacts: what one crash dump (or one saved debugger log) tells us, as frozen dataclasses.

Analysis fills this model from any engine; every renderer (HTML, Markdown, text, JSON, CSV) reads only
this model. ``to_dict()`` produces the JSON schema documented in ``docs/report-schema.md``: every field may
be absent (``None`` / empty), addresses and codes are ``"0x…"`` strings (JSON numbers lose precision above
2**53), and experimental fields carry an ``x_`` prefix. ``CrashFacts.from_dict(facts.to_dict()) == facts``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

__all__ = [
    "FINGERPRINT_BYTES",
    "SCHEMA",
    "BugcheckFact",
    "CrashFacts",
    "CulpritFact",
    "DriverFact",
    "FrameFact",
    "ParameterFact",
    "SourceFact",
    "StackFact",
    "UnloadedDriverFact",
    "dump_type_meaning",
    "fingerprint",
    "machine_name",
    "product_type_name",
    "source_fact",
]

SCHEMA: Final = "dbgauto.crashfacts/1"
FINGERPRINT_BYTES: Final = 1 << 20  # the first MiB identifies a dump cheaply (plus its size)

_DUMP_TYPES: Final = {
    1: "Complete memory dump (full, run list)",
    2: "Kernel memory dump (summary, bitmap; XP to Windows 7)",
    3: "Header-only dump",
    4: "Small memory dump (triage, minidump)",
    5: "Complete or Active memory dump (bitmap)",
    6: "Kernel or Automatic memory dump (bitmap)",
    7: "Automatic memory dump (setting value)",
    8: "Kernel memory dump (ranges, .dump /k)",
    9: "Kernel and user memory dump (ranges, .dump /ka)",
    0xA: "Complete memory dump (ranges, .dump /f)",
}
_MACHINES: Final = {0x014C: "x86", 0x8664: "x64", 0xAA64: "ARM64", 0x01C4: "ARM", 0x0200: "IA64"}
_PRODUCT_TYPES: Final = {1: "Workstation", 2: "Domain controller", 3: "Server"}


def dump_type_meaning(dump_type: int | None) -> str | None:
    """A DumpType value in words (``None`` when unknown)."""
    return None if dump_type is None else _DUMP_TYPES.get(dump_type)


def machine_name(machine: int | None) -> str | None:
    """IMAGE_FILE_MACHINE value → the name the debugger prints (x64, x86, ARM64)."""
    if machine is None:
        return None
    return _MACHINES.get(machine, f"{machine:#06x}")


def product_type_name(product_type: int | None) -> str | None:
    """NT_PRODUCT_TYPE (1 WinNt, 2 LanManNt, 3 Server) in words."""
    return None if product_type is None else _PRODUCT_TYPES.get(product_type)


# --------------------------------------------------------------------------- JSON helpers


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"  # "-0x…" for a negative, as _int reads back


def _int(value: Any) -> int | None:
    """Accept what our JSON writes (``"0x…"``) and what people hand-write (decimal ints or strings)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip().replace("`", "")
    neg = text.startswith("-")
    text = text.lstrip("-")
    number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    return -number if neg else number


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    """Absent fields are left out of the JSON ("all fields may be absent")."""
    return {k: v for k, v in data.items() if v is not None and v != [] and v != {}}


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class SourceFact:
    """The file the facts come from. ``sha256_first_mib_plus_size``: see :func:`source_fact`."""

    path: str
    size: int | None = None
    sha256_first_mib_plus_size: str | None = None
    mtime: datetime | None = None

    @property
    def name(self) -> str:
        """The file name, for paths written on Windows or POSIX alike."""
        return self.path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or self.path

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty(
            {
                "path": self.path,
                "size": self.size,
                "sha256_first_mib_plus_size": self.sha256_first_mib_plus_size,
                "mtime": _time(self.mtime),
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SourceFact:
        return cls(
            path=str(d.get("path", "")),
            size=_int(d.get("size")),
            sha256_first_mib_plus_size=d.get("sha256_first_mib_plus_size"),
            mtime=_parse_time(d.get("mtime")),
        )


def source_fact(path: os.PathLike[str] | str, *, digest: str | None = None) -> SourceFact:
    """Describe a file: size, mtime (UTC) and an identity hash that does not read the whole dump.

    The hash is SHA-256 over the first MiB (or the whole file if shorter) followed by the file size as an
    8-byte little-endian integer, so two dumps that share a header but differ in length differ. A caller that has
    already hashed the file passes ``digest`` (the file is hashed once per task).
    """
    p = Path(path)
    st = p.stat()
    return SourceFact(
        path=str(p),
        size=st.st_size,
        sha256_first_mib_plus_size=digest if digest is not None else fingerprint(p, st.st_size),
        mtime=datetime.fromtimestamp(st.st_mtime, UTC),
    )


def fingerprint(path: os.PathLike[str] | str, size: int | None = None) -> str:
    """SHA-256 (hex) over the first MiB of ``path``, then ``size`` (the file's, by default) as 8 bytes LE.

    The one identity hash of a dump: the facts' ``sha256_first_mib_plus_size`` and the batch catalog's
    ``sha256-1m:`` hash are this digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(FINGERPRINT_BYTES))
        if size is None:
            size = os.fstat(fh.fileno()).st_size
    digest.update(size.to_bytes(8, "little"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ParameterFact:
    """One bug check parameter (index 1..4), with its documented meaning when the reference has one."""

    index: int
    value: int | None
    meaning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty({"index": self.index, "value": _hex(self.value), "meaning": self.meaning})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ParameterFact:
        return cls(index=int(d.get("index", 0)), value=_int(d.get("value")), meaning=d.get("meaning"))


@dataclass(frozen=True, slots=True)
class BugcheckFact:
    """The stop code: number, reference name, whether it is an ``_M`` variant, and the four parameters."""

    code: int
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

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty(
            {
                "code": _hex(self.code),
                "name": self.name,
                "variant_m": self.variant_m,
                "parameters": [p.to_dict() for p in self.parameters],
                "summary": self.summary,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BugcheckFact:
        return cls(
            code=_int(d.get("code")) or 0,
            name=d.get("name"),
            variant_m=bool(d.get("variant_m", False)),
            parameters=tuple(ParameterFact.from_dict(p) for p in d.get("parameters", ())),
            summary=d.get("summary"),
        )


@dataclass(frozen=True, slots=True)
class CulpritFact:
    """The probable culprit module and the rule (see ``dbgauto.analysis.culprit``) that chose it."""

    name: str
    base: int | None = None
    offset: int | None = None
    timestamp: int | None = None
    rule: str | None = None
    address: int | None = None
    is_core: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty(
            {
                "name": self.name,
                "base": _hex(self.base),
                "offset": _hex(self.offset),
                "timestamp": _hex(self.timestamp),
                "rule": self.rule,
                "address": _hex(self.address),
                "is_core": self.is_core,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CulpritFact:
        return cls(
            name=str(d.get("name", "")),
            base=_int(d.get("base")),
            offset=_int(d.get("offset")),
            timestamp=_int(d.get("timestamp")),
            rule=d.get("rule"),
            address=_int(d.get("address")),
            is_core=bool(d.get("is_core", False)),
        )


@dataclass(frozen=True, slots=True)
class FrameFact:
    """One stack frame.

    ``scan``: ``address`` is the stack slot, ``value`` the code address found there. ``symbolic``:
    ``address`` is the frame's Child-SP (or ChildEBP), ``value`` the return address, ``symbol`` the call site.
    """

    index: int
    address: int | None = None
    value: int | None = None
    module: str | None = None
    offset: int | None = None
    symbol: str | None = None

    @property
    def location(self) -> str:
        """``symbol`` if known, else ``module+0xoffset``, else the raw value."""
        if self.symbol:
            return self.symbol
        if self.module is not None:
            return f"{self.module}+{self.offset:#x}" if self.offset is not None else self.module
        return _hex(self.value) or ""

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty(
            {
                "index": self.index,
                "address": _hex(self.address),
                "value": _hex(self.value),
                "module": self.module,
                "offset": _hex(self.offset),
                "symbol": self.symbol,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FrameFact:
        return cls(
            index=int(d.get("index", 0)),
            address=_int(d.get("address")),
            value=_int(d.get("value")),
            module=d.get("module"),
            offset=_int(d.get("offset")),
            symbol=d.get("symbol"),
        )


@dataclass(frozen=True, slots=True)
class StackFact:
    """The crashing thread's stack: ``scan`` (code addresses found on the raw stack) or ``symbolic``."""

    kind: str
    frames: tuple[FrameFact, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "frames", tuple(self.frames))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "frames": [f.to_dict() for f in self.frames]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StackFact:
        return cls(kind=str(d.get("kind", "scan")), frames=tuple(FrameFact.from_dict(f) for f in d.get("frames", ())))


@dataclass(frozen=True, slots=True)
class DriverFact:
    """A loaded module. ``third_party``: see ``dbgauto.analysis.culprit.looks_third_party`` (a heuristic)."""

    name: str
    path: str | None = None
    base: int | None = None
    size: int | None = None
    timestamp: int | None = None
    checksum: int | None = None
    third_party: bool = False

    @property
    def end(self) -> int | None:
        return None if self.base is None or self.size is None else self.base + self.size

    def contains(self, address: int) -> bool:
        return self.base is not None and self.size is not None and self.base <= address < self.base + self.size

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty(
            {
                "name": self.name,
                "path": self.path,
                "base": _hex(self.base),
                "size": _hex(self.size),
                "timestamp": _hex(self.timestamp),
                "checksum": _hex(self.checksum),
                "third_party": self.third_party,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriverFact:
        return cls(
            name=str(d.get("name", "")),
            path=d.get("path"),
            base=_int(d.get("base")),
            size=_int(d.get("size")),
            timestamp=_int(d.get("timestamp")),
            checksum=_int(d.get("checksum")),
            third_party=bool(d.get("third_party", False)),
        )


@dataclass(frozen=True, slots=True)
class UnloadedDriverFact:
    """A recently unloaded driver and the address range it occupied."""

    name: str
    start: int | None = None
    end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty({"name": self.name, "start": _hex(self.start), "end": _hex(self.end)})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UnloadedDriverFact:
        return cls(name=str(d.get("name", "")), start=_int(d.get("start")), end=_int(d.get("end")))


_SCALARS_INT: Final = ("dump_type", "os_build", "os_major", "product_type", "processors", "pid", "tid")
_SCALARS_TEXT: Final = ("variety", "dump_type_meaning", "machine", "os_name", "process_name", "engine")
_SCALARS_TEXT2: Final = ("engine_version", "comment")


@dataclass(frozen=True, slots=True)
class CrashFacts:
    """Everything dbgauto knows about one crash. Every field may be absent; see docs/report-schema.md."""

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
    pc: int | None = None
    culprit: CulpritFact | None = None
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
    experimental: Mapping[str, Any] = field(default_factory=dict)

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
        """The documented JSON schema (docs/report-schema.md); absent fields are omitted."""
        data: dict[str, Any] = {"schema": SCHEMA, "source": self.source.to_dict() if self.source else None}
        for name in (*_SCALARS_TEXT, *_SCALARS_INT, *_SCALARS_TEXT2):
            data[name] = getattr(self, name)
        data.update(
            {
                "is_64bit": self.is_64bit,
                "crash_time": _time(self.crash_time),
                "uptime_seconds": self.uptime_seconds,
                "bugcheck": self.bugcheck.to_dict() if self.bugcheck else None,
                "pc": _hex(self.pc),
                "culprit": self.culprit.to_dict() if self.culprit else None,
                "stack": self.stack.to_dict() if self.stack else None,
                "drivers": [d.to_dict() for d in self.drivers],
                "unloaded_drivers": [d.to_dict() for d in self.unloaded_drivers],
                "raw_output": dict(self.raw_output),
                "warnings": list(self.warnings),
            }
        )
        out = _drop_empty(data)
        for key, value in self.experimental.items():
            out[f"x_{key}"] = value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CrashFacts:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, ``x_*`` keys land in ``experimental``."""
        kwargs: dict[str, Any] = {}
        for name in (*_SCALARS_TEXT, *_SCALARS_TEXT2):
            kwargs[name] = d.get(name)
        for name in _SCALARS_INT:
            kwargs[name] = _int(d.get(name))
        is_64 = d.get("is_64bit")
        uptime = d.get("uptime_seconds")
        return cls(
            source=SourceFact.from_dict(d["source"]) if d.get("source") else None,
            is_64bit=None if is_64 is None else bool(is_64),
            crash_time=_parse_time(d.get("crash_time")),
            uptime_seconds=None if uptime is None else float(uptime),
            bugcheck=BugcheckFact.from_dict(d["bugcheck"]) if d.get("bugcheck") else None,
            pc=_int(d.get("pc")),
            culprit=CulpritFact.from_dict(d["culprit"]) if d.get("culprit") else None,
            stack=StackFact.from_dict(d["stack"]) if d.get("stack") else None,
            drivers=tuple(DriverFact.from_dict(x) for x in d.get("drivers", ())),
            unloaded_drivers=tuple(UnloadedDriverFact.from_dict(x) for x in d.get("unloaded_drivers", ())),
            raw_output={str(k): str(v) for k, v in (d.get("raw_output") or {}).items()},
            warnings=tuple(str(w) for w in d.get("warnings", ())),
            experimental={k[2:]: v for k, v in d.items() if k.startswith("x_")},
            **kwargs,
        )


def _strip_x(key: str) -> str:
    return key[2:] if key.startswith("x_") else key


def parameters_from(values: Sequence[int | None], meanings: Sequence[str | None] = ()) -> tuple[ParameterFact, ...]:
    """Four (or fewer) raw parameters with their meanings, numbered from 1."""
    return tuple(
        ParameterFact(index=i + 1, value=v, meaning=meanings[i] if i < len(meanings) else None)
        for i, v in enumerate(values)
    )
