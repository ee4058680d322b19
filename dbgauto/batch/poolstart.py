"""How the local pool's workers start, kept apart so the ``batch`` command can start them first.

Why a module of its own: starting the fork server is the slowest step of a small batch (its process imports the
whole worker stack, about 0.3 s here), and only what is in this module must be imported to start it. The CLI
starts it before it imports the coordinator, the catalog and the report layer, so both load at once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys

from dbgauto.errors import DbgautoError

__all__ = ["START_METHOD_ENV", "WORKER_PRELOAD", "prestart_forkserver", "start_method"]

START_METHOD_ENV = "DBGAUTO_POOL_START_METHOD"
WORKER_PRELOAD = (
    "dbgauto.batch.tasks",
    "dbgauto.kdump.reader",
    "dbgauto.engines.jobs",
    "dbgauto.report.render",
    # imported by the first task otherwise (about 0.1 s per worker: the triage parser, the kernel layer, the
    # symbol layer with its HTTP client, the facts)
    "dbgauto.kdump.triage_parse",
    "dbgauto.kernel.open",
    "dbgauto.symbols.context",
    "dbgauto.analysis.from_dump",
    "dbgauto.catalog.summary",
    "dbgauto.report.outputs",
)


def start_method() -> str:
    """The local pool's start method: ``DBGAUTO_POOL_START_METHOD``, else spawn on Windows, forkserver elsewhere."""
    forced = os.environ.get(START_METHOD_ENV, "").strip().lower()
    if forced:
        if forced not in ("spawn", "forkserver") or forced not in multiprocessing.get_all_start_methods():
            raise DbgautoError(f"{START_METHOD_ENV}={forced!r}: use spawn or forkserver (fork cannot recycle workers)")
        return forced
    return "spawn" if sys.platform == "win32" else "forkserver"


def prestart_forkserver() -> None:
    """Start the local pool's fork server now: it imports :data:`WORKER_PRELOAD` while this process goes on
    (imports, the lock, the catalog, discovery), instead of after them, when the first task is submitted. Returns
    at once (the server loads in its own process); calling it again does nothing more. Nothing under spawn
    (Windows: workers start at the first submit); a server never used exits with this process; any failure is
    left to the first submit, which reports it."""
    with contextlib.suppress(Exception):
        if start_method() != "forkserver":
            return
        from multiprocessing import forkserver

        multiprocessing.get_context("forkserver").set_forkserver_preload(list(WORKER_PRELOAD))
        forkserver.ensure_running()
