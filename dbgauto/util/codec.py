"""Frozen dataclasses ↔ JSON-ready dicts, declared by the fields' types (one codec for every model).

Why declarative: the JSON schemas (``docs/report-schema.md``) are contracts; writing each class's
``to_dict``/``from_dict`` by hand let them drift apart. Here the field's type says how it is written:

- ``int`` / ``float`` / ``bool`` / ``str``: as is. ``Hex`` (``Annotated[int, HEX]``): an address, code, size of
  image, timestamp or checksum, written ``"0x…"`` (``"-0x…"`` if negative) because JSON numbers lose
  precision above 2**53. Reading accepts hex strings, decimal strings and numbers for any int field.
- ``datetime``: ISO 8601 in UTC with microseconds and a ``Z`` suffix (``2021-02-21T01:38:22.987765Z``, the
  ground truth's form); a naive value is taken as UTC, both ways.
- a nested dataclass: an object; ``tuple[X, ...]``: an array; ``tuple[X, Y]``: an array of two, each with
  its own convention; ``Mapping``: an object (``Any`` values as is).
- ``X | None``: the value or absent.
- ``Annotated[Mapping[str, Any], Extras("x_")]``: the mapping's items sit at the top level with the prefix
  (experimental fields); reading gathers every key with that prefix back.
- ``Annotated[..., KEEP]``: written even when empty (``[]``/``{}``).

``to_json(obj)`` leaves absent values out (``None``, ``[]``, ``{}``; ``False``, ``0`` and ``""`` stay) unless
``omit_absent=False``, which writes ``null`` instead. A class with ``JSON_SCHEMA: ClassVar[str]`` gets a leading
``"schema"`` key. ``from_json(cls, data)`` is the inverse; unknown keys are ignored, a missing required field
reads as its type's zero value (``""``, ``0``, ``False``), a missing optional field as its default.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar, Union

from dbgauto.errors import CodecError

__all__ = [
    "HEX",
    "KEEP",
    "CodecError",
    "Extras",
    "Hex",
    "from_json",
    "hex_or_none",
    "iso_z",
    "parse_int",
    "parse_time",
    "to_json",
]

T = TypeVar("T")


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


HEX: Final = _Marker("HEX")  # Annotated[int, HEX]: written as "0x…"
KEEP: Final = _Marker("KEEP")  # Annotated[X, KEEP]: written even when empty


@dataclasses.dataclass(frozen=True, slots=True)
class Extras:
    """Annotated[Mapping[str, Any], Extras("x_")]: the mapping's items are top-level keys with ``prefix``."""

    prefix: str


Hex = Annotated[int, HEX]


# --------------------------------------------------------------------------- scalar conventions


def hex_or_none(value: int | None) -> str | None:
    """``"0x1f"`` (lower case; ``"-0x5"`` for a negative), or None."""
    return None if value is None else f"{value:#x}"


def parse_int(value: Any) -> int | None:
    """What our JSON writes (``"0x…"``) and what people hand-write (numbers, decimal strings, WinDbg backticks)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    text = str(value).strip().replace("`", "")
    neg = text.startswith("-")
    text = text.lstrip("-")
    try:
        number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError as exc:
        raise CodecError(f"not a number: {value!r}") from exc
    return -number if neg else number


def iso_z(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with microseconds and ``Z`` (``2021-02-21T01:38:22.987765Z``); None stays None."""
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo is not None else value
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(value: Any) -> datetime | None:
    """Inverse of :func:`iso_z`; a time without a zone is taken as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise CodecError(f"not an ISO 8601 time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- field plans

Encoder = Callable[[Any, bool], Any]
Decoder = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str
    encode: Encoder
    decode: Decoder
    keep: bool
    extras: str | None
    missing: Any  # what a missing key reads as (dataclasses.MISSING: use the field's default)


def _plain(value: Any, _omit: bool) -> Any:
    return value


def _enc_hex(value: Any, _omit: bool) -> Any:
    return hex_or_none(value)


def _enc_time(value: Any, _omit: bool) -> Any:
    return iso_z(value)


def _dec_str(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else str(value)


def _dec_bool(value: Any) -> Any:
    return None if value is None else bool(value)


def _dec_float(value: Any) -> Any:
    return None if value is None else float(value)


def _split_annotated(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    if typing.get_origin(tp) is Annotated:
        return tp.__origin__, tuple(tp.__metadata__)
    return tp, ()


def _coders(tp: Any) -> tuple[Encoder, Decoder, tuple[Any, ...]]:
    """(encode, decode, markers) for one declared type."""
    tp, markers = _split_annotated(tp)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"codec: only X | None unions are supported, not {tp}")
        enc, dec, inner = _coders(args[0])
        if enc is _plain or enc is _enc_hex:  # both already give None for None: no wrapper call per value
            return enc, (lambda v: None if v is None else dec(v)), markers + inner
        return (
            (lambda v, o: None if v is None else enc(v, o)),
            (lambda v: None if v is None else dec(v)),
            markers + inner,
        )
    if HEX in markers:
        return _enc_hex, parse_int, markers
    if dataclasses.is_dataclass(tp):
        cls = tp

        def enc_obj(v: Any, omit: bool) -> Any:
            return None if v is None else _encode(v, omit)

        def dec_obj(v: Any) -> Any:
            if not v:
                return None
            if not isinstance(v, Mapping):
                raise CodecError(f"{cls.__name__}: expected an object, got {type(v).__name__}")
            return _decode(cls, v)

        return enc_obj, dec_obj, markers
    if origin is tuple and not (len(typing.get_args(tp)) == 2 and typing.get_args(tp)[1] is Ellipsis):
        return (*_fixed_tuple(typing.get_args(tp)), markers)
    if origin is tuple:
        enc_item, dec_item, _ = _coders(typing.get_args(tp)[0])

        def enc_seq(v: Any, omit: bool) -> Any:
            return [enc_item(x, omit) for x in v]

        def dec_seq(v: Any) -> Any:
            if v is None:
                return ()
            if isinstance(v, (str, bytes, Mapping)):
                raise CodecError(f"expected an array, got {type(v).__name__}")
            return tuple(dec_item(x) for x in v)

        return enc_seq, dec_seq, markers
    if origin in (Mapping, dict, typing.Mapping) or tp in (dict, Mapping):
        args = typing.get_args(tp) or (str, Any)
        enc_val, dec_val, _ = _coders(args[1])

        def enc_map(v: Any, omit: bool) -> Any:
            return {str(k): enc_val(x, omit) for k, x in v.items()}

        def dec_map(v: Any) -> Any:
            if v is None:
                return {}
            if not isinstance(v, Mapping):
                raise CodecError(f"expected an object, got {type(v).__name__}")
            return {str(k): dec_val(x) for k, x in v.items()}

        return enc_map, dec_map, markers
    if tp is Any:
        return _plain, (lambda v: v), markers
    if tp is datetime:
        return _enc_time, parse_time, markers
    if tp is bool:
        return _plain, _dec_bool, markers
    if tp is int:
        return _plain, parse_int, markers
    if tp is float:
        return _plain, _dec_float, markers
    if tp is str:
        return _plain, _dec_str, markers
    raise TypeError(f"codec: no JSON convention for {tp!r}")


def _fixed_tuple(args: tuple[Any, ...]) -> tuple[Encoder, Decoder]:
    """``tuple[Hex, int]``: a fixed-length array, each position with its own convention."""
    coders = [_coders(a)[:2] for a in args]

    def enc(v: Any, omit: bool) -> Any:
        return [e(x, omit) for (e, _), x in zip(coders, v, strict=True)]

    def dec(v: Any) -> Any:
        if isinstance(v, (str, bytes, Mapping)) or len(v) != len(coders):
            raise CodecError(f"expected an array of {len(coders)}, got {v!r}")
        return tuple(d(x) for (_, d), x in zip(coders, v, strict=True))

    return enc, dec


_ZERO: Final = {str: "", int: 0, float: 0.0, bool: False}


@functools.cache
def _plan(cls: type) -> tuple[str | None, tuple[_Field, ...]]:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = []
    for f in dataclasses.fields(cls):
        enc, dec, markers = _coders(hints[f.name])
        extras = next((m.prefix for m in markers if isinstance(m, Extras)), None)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        bare, _ = _split_annotated(hints[f.name])
        missing = dataclasses.MISSING if has_default else _ZERO.get(bare, None)
        fields.append(_Field(f.name, enc, dec, KEEP in markers, extras, missing))
    schema = getattr(cls, "JSON_SCHEMA", None)
    return (schema if isinstance(schema, str) else None), tuple(fields)


# --------------------------------------------------------------------------- public


def to_json(obj: Any, *, omit_absent: bool = True) -> dict[str, Any]:
    """A dataclass instance as a JSON-ready dict (see the module docstring for the conventions)."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"to_json needs a dataclass instance, not {type(obj).__name__}")
    return _encode(obj, omit_absent)


def _encode(obj: Any, omit: bool) -> dict[str, Any]:
    return _writer(type(obj), omit)(obj)


@functools.cache
def _writer(cls: type, omit: bool) -> Callable[[Any], dict[str, Any]]:
    """One class's encoder as straight-line code, made once from its field plan: a report's ~150 drivers (and
    every other object) are written without a loop over the plan, a call per plain or hex field, or a test per
    field of what the plan already knows (measured: 151 real drivers in 0.10 ms instead of 0.30). Only the
    plan's own field names (Python identifiers) and encoders enter the generated code, never data."""
    schema, fields = _plan(cls)
    env: dict[str, Any] = {"_LIST_DICT": (list, dict), "SCHEMA": schema}
    lines = ["def write(o):", "    out = {}" if schema is None else "    out = {'schema': SCHEMA}"]
    for i, f in enumerate(fields):
        if f.extras is not None:
            continue
        lines.append(f"    v = o.{f.name}")
        # absent, and left out unless KEEP or omit_absent=False: None, [] and {} (False, 0 and "" are values)
        if f.encode is _enc_hex:
            test, value = "v is not None", "f'{v:#x}'"
        elif f.encode is _plain:
            test, value = "v is not None and (v or not isinstance(v, _LIST_DICT))", "v"
        else:
            env[f"enc{i}"] = f.encode
            lines.append(f"    v = enc{i}(v, {omit!r})")
            test, value = "v is not None and (v or not isinstance(v, _LIST_DICT))", "v"
        if not omit or f.keep:
            value = value if f.encode is not _enc_hex else "None if v is None else " + value
            lines.append(f"    out[{f.name!r}] = {value}")
        else:
            lines.append(f"    if {test}:\n        out[{f.name!r}] = {value}")
    extras = [f for f in fields if f.extras is not None]  # written last, in field order
    lines.extend(f"    for k, x in o.{f.name}.items():\n        out[{f.extras!r} + k] = x" for f in extras)
    lines.append("    return out")
    exec("\n".join(lines), env)  # the dataclass's own field plan (see above)
    write: Callable[[Any], dict[str, Any]] = env["write"]
    return write


def from_json(cls: type[T], data: Mapping[str, Any]) -> T:
    """Inverse of :func:`to_json`: unknown keys ignored, missing ones as in the module docstring."""
    if not isinstance(data, Mapping):
        raise CodecError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    return _decode(cls, data)


def _decode(cls: type[T], data: Mapping[str, Any]) -> T:
    _schema, fields = _plan(cls)
    kwargs: dict[str, Any] = {}
    for f in fields:
        if f.extras is not None:
            n = len(f.extras)
            kwargs[f.name] = {k[n:]: v for k, v in data.items() if k.startswith(f.extras)}
            continue
        raw = data.get(f.name)
        if raw is None:
            if f.missing is dataclasses.MISSING:
                continue
            kwargs[f.name] = f.missing
            continue
        try:
            kwargs[f.name] = f.decode(raw)
        except (TypeError, ValueError) as exc:
            raise CodecError(f"{cls.__name__}.{f.name}: {exc}") from exc
    return cls(**kwargs)
