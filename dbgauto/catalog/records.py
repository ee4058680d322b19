"""Plain records that travel between batch workers and the catalog.

Why separate from db.py: workers (local processes or Dask hosts) build these and send them back pickled;
they must not need sqlite3 or the catalog file. Only the coordinating process turns them into rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dbgauto.catalog.summary import StoredFacts, Summary

__all__ = [
    "TRANSIENT_CODES",
    "DumpState",
    "HeaderFacts",
    "ResultRecord",
    "SkipRecord",
    "SourceState",
    "is_transient",
]

# Failures that say nothing about the dump itself (an I/O error, a file that vanished while it was read):
# the next run retries them. Every other failure code marks a broken dump, retried only with --retry-failed.
TRANSIENT_CODES = frozenset({"os_error", "not_found"})


def is_transient(status: str | None, error_code: str | None) -> bool:
    """Is this outcome a transient failure (retried by the next run without --retry-failed)?"""
    return status == "failed" and error_code in TRANSIENT_CODES


@dataclass(frozen=True, slots=True)
class SourceState:
    """What identifies a source file's content cheaply: size and modification time (plus a hash when known)."""

    path: str
    size: int
    mtime_ns: int
    hash: str | None = None


@dataclass(frozen=True, slots=True)
class HeaderFacts:
    """The few header values the catalog keeps per dump, for listing and filtering without the facts JSON."""

    is_64bit: bool | None = None
    dump_type: int | None = None
    machine: int | None = None
    build: int | None = None
    bugcheck_code: int | None = None
    bugcheck_parameters: tuple[int, ...] | None = None
    system_time: str | None = None


@dataclass(slots=True)
class ResultRecord:
    """One dump's outcome in one run, as the task function returns it (paths are absolute here)."""

    source: SourceState
    status: str  # "ok" | "failed"
    error_code: str | None = None
    error_message: str | None = None
    header: HeaderFacts = field(default_factory=HeaderFacts)
    small_path: str | None = None
    small_size: int | None = None
    report_paths: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] | None = None
    engine: str | None = None
    debugger_version: str | None = None
    convert_seconds: float | None = None
    facts_seconds: float | None = None
    report_seconds: float | None = None
    total_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)
    verified: bool | None = None
    verify_note: str | None = None
    host: str | None = None  # from the folder layout (the coordinator sets it)
    # The facts as the worker already packed them (summary columns, compressed facts, driver list + digest):
    # a small record to send back, and no compression work left for the coordinator. ``facts`` is then None.
    summary: Summary | None = None
    packed: StoredFacts | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DumpState:
    """What the catalog remembers of a path: its last seen state and its newest result's outcome."""

    dump_id: int
    path: str
    size: int
    mtime_ns: int
    hash: str | None
    last_status: str | None
    last_error_code: str | None
    last_result_size: int | None
    last_result_mtime_ns: int | None
    last_result_hash: str | None
    source_deleted: str | None
    last_transient: bool = False


@dataclass(frozen=True, slots=True)
class SkipRecord:
    """A file a run saw and did not process (one catalog row per path, updated by each run that skips it).

    ``reason``: ``older_than_since`` | ``not_a_dump`` | ``unreadable`` (dbgauto.batch.discover)."""

    path: str
    size: int | None
    mtime_ns: int | None
    reason: str
    message: str
    host: str | None = None
