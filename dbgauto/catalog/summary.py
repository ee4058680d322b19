"""The summary columns of a result and its facts as stored: compressed, with the driver list kept once.

Why: the index, the buckets and the CLI read a few values per dump; loading 40 KB of facts JSON per row to
get them made the index cost ~165 KB of memory per dump. The columns are computed once, when the result
is recorded. The driver list is three quarters of the facts and the same from boot to boot of a machine
(and on every machine of an image) but for its bases, which KASLR draws anew at every boot: the list
*without* its bases is stored once per distinct list in ``driver_sets`` and referenced, each result keeps
its bases (a compressed JSON array, in list order); the rest of the facts is zlib-compressed.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

from dbgauto.catalog.bucket import bucket_of
from dbgauto.util.memo import KEPT_TEXT, remember

__all__ = ["StoredFacts", "Summary", "pack_facts", "summary_of", "unpack_facts"]

ZLIB_LEVEL = 6


@dataclass(frozen=True, slots=True)
class Summary:
    crash_time: str | None = None
    bugcheck_code: int | None = None
    bugcheck_name: str | None = None
    parameters: str | None = None
    culprit: str | None = None
    culprit_timestamp: int | None = None
    bucket: str | None = None
    build: int | None = None
    machine_name: str | None = None
    process: str | None = None
    warnings_count: int = 0


@dataclass(frozen=True, slots=True)
class StoredFacts:
    facts_z: bytes
    drivers_digest: str | None  # of the base-less list (its canonical JSON)
    drivers_z: bytes | None  # the base-less list, compressed
    bases_z: bytes | None = None  # each driver's "base", in list order (JSON array, compressed)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def summary_of(facts: dict[str, Any] | None, warnings: int = 0) -> Summary:
    """The summary columns of one facts dict (missing or odd-shaped values become None); ``warnings_count``
    counts the facts' own warnings plus ``warnings``."""
    if not facts:
        return Summary(warnings_count=warnings)
    bug = facts.get("bugcheck") if isinstance(facts.get("bugcheck"), dict) else {}
    culprit = facts.get("culprit") if isinstance(facts.get("culprit"), dict) else {}
    params = bug.get("parameters") if isinstance(bug.get("parameters"), list) else []
    values = [p.get("value") for p in params if isinstance(p, dict)]
    fw = facts.get("warnings")
    return Summary(
        crash_time=_str(facts.get("crash_time")),
        bugcheck_code=_int(bug.get("code")),
        bugcheck_name=_str(bug.get("name")),
        parameters=",".join(str(v) for v in values) or None,
        culprit=_str(culprit.get("name")),
        culprit_timestamp=_int(culprit.get("timestamp")),
        bucket=bucket_of(facts),
        build=_int(facts.get("os_build")),
        machine_name=_str(facts.get("machine")),
        process=_str(facts.get("process_name")),
        warnings_count=warnings + (len(fw) if isinstance(fw, list) else 0),
    )


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode("ascii")


def pack_facts(facts: dict[str, Any], *, split_bases: bool = True) -> StoredFacts:
    """Facts without their driver list, compressed; the driver list without its bases, compressed with its
    digest (the same for every boot of a machine); the bases apart. No list: the digest and both parts None.
    ``split_bases=False``: the list stored whole with its bases (catalog schemas 2 and 3: their migration)."""
    rest = dict(facts)
    listed = rest.pop("drivers", None)
    if not isinstance(listed, list) or not listed or not all(isinstance(d, dict) for d in listed):
        return StoredFacts(zlib.compress(_dumps(facts), ZLIB_LEVEL), None, None)
    if not split_bases:
        digest, drivers_z = _packed_drivers(_dumps(listed))
        return StoredFacts(zlib.compress(_dumps(rest), ZLIB_LEVEL), digest, drivers_z)
    bases = [d.get("base") for d in listed]
    digest, drivers_z = _packed_drivers(b"[" + b",".join(map(_driver_json, listed)) + b"]")
    return StoredFacts(
        zlib.compress(_dumps(rest), ZLIB_LEVEL), digest, drivers_z, zlib.compress(_dumps(bases), ZLIB_LEVEL)
    )


_DRIVER_JSON: dict[tuple[Any, ...], bytes] = {}
_DRIVER_JSON_LIMIT = 8192  # distinct drivers remembered per process (a fleet's images list a few hundred)


def _driver_json(driver: dict[str, Any]) -> bytes:
    """One driver of a list without its base, as ``_dumps`` writes it inside the list. Remembered per process by
    the driver's other values, which its file decides and which stay the same from boot to boot (KASLR moves only
    the base): encoding ~150 drivers per dump was most of the cost of packing a small dump's facts."""
    rest = driver.copy()
    rest.pop("base", None)
    try:  # to_dict writes strings, booleans and None here, so equal keys are equal JSON (True == 1 never meets)
        key = tuple(rest.items())
        got = _DRIVER_JSON.get(key)
    except TypeError:  # an unhashable value (not what to_dict writes): encoded as it is
        return _dumps(rest)
    if got is None:
        got = _dumps(rest)
        if len(got) <= KEPT_TEXT:  # a driver with longer text (a hostile dump) is not kept
            remember(_DRIVER_JSON, key, got, _DRIVER_JSON_LIMIT)
    return got


_DRIVER_SETS: dict[bytes, tuple[str, bytes]] = {}
_DRIVER_SETS_LIMIT = 32
_DRIVER_SET_KEPT_BYTES = 1 << 20  # a real list's JSON: about 30 KB


def _packed_drivers(data: bytes) -> tuple[str, bytes]:
    """(digest, compressed) of one encoded base-less driver list, remembered per process by its bytes: a
    fleet's dumps list the same drivers again and again (every boot of a host, every host of an image), and
    compressing the list was most of the cost of packing a small dump's facts."""
    got = _DRIVER_SETS.get(data)
    if got is None:
        got = hashlib.sha256(data).hexdigest(), zlib.compress(data, ZLIB_LEVEL)
        if len(data) <= _DRIVER_SET_KEPT_BYTES:  # a huge list (a hostile file) is not kept
            remember(_DRIVER_SETS, data, got, _DRIVER_SETS_LIMIT)
    return got


def unpack_facts(facts_z: bytes, drivers_z: bytes | None, bases_z: bytes | None = None) -> dict[str, Any]:
    """The facts dict as recorded (the inverse of :func:`pack_facts`). ``bases_z`` None: a row recorded before
    catalog schema 4, whose stored list holds the bases itself."""
    facts: dict[str, Any] = json.loads(zlib.decompress(facts_z))
    if drivers_z is not None:
        drivers = json.loads(zlib.decompress(drivers_z))
        if bases_z is not None:
            for driver, base in zip(drivers, json.loads(zlib.decompress(bases_z)), strict=True):
                if base is not None:
                    driver["base"] = base
        facts["drivers"] = drivers
    return facts
