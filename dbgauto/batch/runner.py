"""Run per-dump tasks on a local process pool or a Dask cluster, through one concurrent.futures interface.

Why this shape:
- **Local** (default): ``ProcessPoolExecutor`` with ``max_tasks_per_child`` (processes are recycled, so a
  debugger engine that leaks state lives for a bounded number of dumps; one engine per process). Start method
  ``spawn`` on Windows, ``forkserver`` elsewhere (``max_tasks_per_child`` refuses ``fork``);
  ``DBGAUTO_POOL_START_METHOD=spawn`` forces spawn anywhere (the CI runs the batch suite that way). Under
  spawn every worker imports :data:`WORKER_PRELOAD` itself in its initializer (forkserver imports them once
  in the server); task payloads (:class:`TaskSpec`) and results are plain picklable dataclasses.
- Workers exit when the coordinator dies (killed without cleanup), on every OS: a watch thread polls the
  coordinator's pid with :func:`dbgauto.util.proc.pid_alive` (OpenProcess on Windows; never ``os.kill(pid,
  0)`` there, which would terminate it).
- **Dask**: ``Client(address).get_executor(resources=...)``: the same ``submit``/``wait`` code. Tasks for
  engines that need a Windows debugger carry the worker resource ``{"DBGENG": 1}`` so they only land on
  workers started with ``--resources DBGENG=1``.
- **Chunks** (local pool): small sources (<= :data:`CHUNK_MAX_BYTES`) travel in chunks of up to
  :data:`CHUNK_MAX` per task (at most a quarter of a worker's share of what is pending, so a short run keeps one
  source per task): one pickle round trip and one durability point per chunk instead of per dump
  (:func:`dbgauto.batch.tasks.run_tasks`), and ``max_tasks_per_child`` counts chunks. A chunk's worker marks
  which source it is on (its stage file), so a per-task timeout still applies to that source alone, and when
  a worker dies that source is the suspect re-run alone; the chunk's other sources are re-queued.
- As many tasks in flight as there are worker slots, plus (chunks of small dumps only) one more per slot
  waiting in the pool's queue, so a worker that finishes a chunk starts the next at once. A task's clock starts
  when its first source writes its stage file, so the per-task timeout (``task_timeout``) is measured honestly
  and a queued task is neither timed out nor taken for a dead worker's suspect.
- A worker that dies breaks a local pool for every task in flight. Those tasks become *suspects* and are
  re-run one at a time on a fresh pool: the one that breaks it alone is failed (``worker_died``); the others
  complete. A task over its timeout is failed (``task_timeout``); on a local pool its worker processes are
  killed and the pool is recreated (innocent tasks in flight are re-queued); on Dask the future is
  cancelled (a Python thread cannot be killed; the engine's own CommandTimeoutError is the first guard).
- Shutting a local pool down has its own deadline (``shutdown_timeout``): a worker that cannot take the
  stop request (frozen by SIGSTOP, wedged in a driver) is killed instead of holding the batch up after
  every result is in.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from dbgauto.batch.poolstart import START_METHOD_ENV, WORKER_PRELOAD, prestart_forkserver, start_method
from dbgauto.batch.tasks import TaskSpec, read_stage, run_tasks, set_stage_dir, stage_path
from dbgauto.catalog.records import ResultRecord, SourceState
from dbgauto.errors import DbgautoError
from dbgauto.util.proc import pid_alive

__all__ = [
    "DEBUGGER_ENGINES",
    "START_METHOD_ENV",
    "WORKER_PRELOAD",
    "RunnerOptions",
    "TaskRunner",
    "preload",
    "prestart_forkserver",
    "resources_for",
    "start_method",
]

log = logging.getLogger(__name__)

DEBUGGER_ENGINES = frozenset({"cdb", "kd", "dbgeng"})
TaskFn = Callable[[TaskSpec], ResultRecord]
CHUNK_MAX = 32  # small sources per local task (one pickle round trip, one durability point for all of them)
CHUNK_MAX_BYTES = 16 << 20  # sources up to this size share tasks: small dumps (milliseconds each), never large ones
CHUNKS_PER_SLOT = 4  # a chunk is at most 1/4 of a worker's share of what is pending, so the tail stays balanced


def _run_chunk(fn: TaskFn, specs: tuple[TaskSpec, ...]) -> list[ResultRecord]:
    """A local worker's task: ``fn`` over a chunk of sources, reports published together at the end."""
    return run_tasks(specs, fn)


def _as_records(got: Any) -> list[ResultRecord]:
    return got if isinstance(got, list) else [got]


def resources_for(engine: str) -> dict[str, int] | None:
    """Dask worker resources a task with ``engine`` needs (None: any worker)."""
    return {"DBGENG": 1} if engine in DEBUGGER_ENGINES else None


@dataclass(slots=True)
class RunnerOptions:
    jobs: int = 1
    scheduler: str | None = None  # tcp://host:port of a Dask scheduler; None: local pool
    engine: str = "native"
    task_timeout: float | None = 900.0
    max_tasks_per_child: int | None = 50
    connect_timeout: float = 30.0
    shutdown_timeout: float = 10.0
    chunk_max: int = CHUNK_MAX  # 1: every source its own task
    extra: dict[str, Any] = field(default_factory=dict)


def _parent_watch(coordinator: int, interval: float = 0.5) -> None:
    """Exit a worker whose coordinator died (kill -9, TerminateProcess), so orphans never keep writing outputs."""
    while True:
        time.sleep(interval)
        if not pid_alive(coordinator):
            os._exit(75)


def preload() -> list[str]:
    """Import :data:`WORKER_PRELOAD` (a worker started by spawn has nothing imported); the names imported."""
    done = []
    for name in WORKER_PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # a missing optional part fails the task that needs it, with its reason
            log.debug("preload %s: %s", name, exc)
            continue
        done.append(name)
    return done


def _worker_init(coordinator: int, level: int, method: str = "forkserver", stage_dir: str | None = None) -> None:
    set_stage_dir(stage_dir)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s[%(process)d]: %(message)s", stream=sys.stderr)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles Ctrl-C and shuts the pool down
    if method == "spawn":
        preload()
    threading.Thread(target=_parent_watch, args=(coordinator,), daemon=True, name="dbgauto-parent-watch").start()


def _failed(spec: TaskSpec, code: str, message: str, engine: str) -> ResultRecord:
    return ResultRecord(
        source=SourceState(spec.source, spec.size, spec.mtime_ns),
        status="failed",
        error_code=code,
        error_message=message,
        engine=engine,
    )


@dataclass(slots=True)
class _Slot:
    specs: tuple[TaskSpec, ...]  # one source, or a chunk of small ones (local pool)
    started: float  # when the task (for a chunk: its current source) started
    suspect: bool
    stage: str | None = None

    @property
    def spec(self) -> TaskSpec:
        return self.specs[0]


class TaskRunner:
    """Owns the executor (a local pool or a Dask client) for one batch; use as a context manager."""

    def __init__(self, options: RunnerOptions) -> None:
        self.options = options
        self._client: Any = None
        self._executor: Executor | None = None
        self.restarts = 0
        self._stage_dir: str | None = None  # local pool: where workers write each task's live stage

    # ---------------------------------------------------------------- executors
    @property
    def is_dask(self) -> bool:
        return self.options.scheduler is not None

    def _new_local(self) -> ProcessPoolExecutor:
        method = start_method()
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            # Workers fork from a server that already imported the task's modules: starting or recycling a
            # worker costs a fork, not an interpreter start plus imports (missing modules are skipped).
            ctx.set_forkserver_preload(list(WORKER_PRELOAD))
        return ProcessPoolExecutor(
            max_workers=max(1, self.options.jobs),
            mp_context=ctx,
            max_tasks_per_child=self.options.max_tasks_per_child,
            initializer=_worker_init,
            initargs=(os.getpid(), logging.getLogger().getEffectiveLevel(), method, self._stages()),
        )

    def _new_dask(self) -> Executor:
        try:
            from distributed import Client
        except ImportError as exc:  # the `cluster` extra
            raise DbgautoError("--scheduler needs Dask distributed: pip install 'dbgauto[cluster]'") from exc
        if self._client is None:
            try:
                self._client = Client(self.options.scheduler, timeout=self.options.connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise DbgautoError(
                    f"cannot reach the Dask scheduler {self.options.scheduler} "
                    f"within {self.options.connect_timeout:g}s: {exc}"
                ) from exc
        resources = resources_for(self.options.engine)
        kwargs: dict[str, Any] = {"pure": False}
        if resources:
            kwargs["resources"] = resources
        executor: Executor = self._client.get_executor(**kwargs)
        return executor

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = self._new_dask() if self.is_dask else self._new_local()
        return self._executor

    def slots(self) -> int:
        """How many tasks may be in flight at once."""
        if not self.is_dask:
            return max(1, self.options.jobs)
        self.executor  # noqa: B018 - connects the client
        nthreads = self._client.nthreads() if self._client is not None else {}
        total = sum(nthreads.values()) if nthreads else 1
        return max(1, total)

    def _kill_local(self) -> None:
        """Kill every worker of the local pool (a hung or broken pool) and forget the executor."""
        ex = self._executor
        self._executor = None
        if ex is None:
            return
        self.restarts += 1
        procs = list(getattr(ex, "_processes", {}).values())  # no public API lists a pool's processes
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.kill()
        with contextlib.suppress(Exception):
            ex.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.join(timeout=2)

    def _stages(self) -> str:
        if self._stage_dir is None:
            self._stage_dir = tempfile.mkdtemp(prefix="dbgauto-stages-")
        return self._stage_dir

    def _forget_stage(self, spec: TaskSpec) -> None:
        if self._stage_dir is not None:
            with contextlib.suppress(OSError):
                stage_path(self._stage_dir, spec.source).unlink(missing_ok=True)

    def close(self) -> None:
        if self._stage_dir is not None:
            shutil.rmtree(self._stage_dir, ignore_errors=True)
            self._stage_dir = None
        if self._executor is not None:
            if self.is_dask:
                with contextlib.suppress(Exception):
                    self._executor.shutdown(wait=False)
            else:
                self._shutdown_local(self._executor)
            self._executor = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def _shutdown_local(self, ex: Executor) -> None:
        """Ask the pool's workers to exit; kill those still there after ``shutdown_timeout`` seconds."""
        procs = list(getattr(ex, "_processes", {}).values())  # no public API lists a pool's processes
        ex.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + self.options.shutdown_timeout
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [p for p in procs if p.is_alive()]
        for proc in stuck:
            with contextlib.suppress(Exception):
                proc.kill()
                proc.join(timeout=2)
        if stuck:
            log.warning(
                "%d idle worker process(es) did not exit within %gs of the shutdown request; killed",
                len(stuck),
                self.options.shutdown_timeout,
            )
        thread = getattr(ex, "_executor_manager_thread", None)
        if thread is not None:
            thread.join(timeout=2)

    def abort(self) -> None:
        """Stop now (Ctrl-C): kill local workers, drop the Dask client."""
        if not self.is_dask:
            self._kill_local()
        self.close()

    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.abort()
        else:
            self.close()

    # ---------------------------------------------------------------- the loop
    def run(
        self,
        specs: Iterable[TaskSpec],
        fn: TaskFn,
        *,
        on_start: Callable[[TaskSpec], None] | None = None,
        on_done: Callable[[TaskSpec, ResultRecord], None],
        on_tick: Callable[[], None] | None = None,
        on_stage: Callable[[TaskSpec, str], None] | None = None,
    ) -> None:
        """Run ``fn`` over ``specs``; ``on_done`` gets exactly one record per spec, in completion order;
        ``on_tick`` is called after every wait (at least every half second while tasks run); ``on_stage`` when a
        running task (local pool only) reports a new stage (hash, convert, facts, report)."""
        pending: collections.deque[TaskSpec] = collections.deque(specs)
        suspects: collections.deque[TaskSpec] = collections.deque()
        inflight: dict[Future[Any], _Slot] = {}
        slots = self.slots()
        timeout = self.options.task_timeout
        engine = self.options.engine
        chunked = not self.is_dask and self.options.chunk_max > 1
        submitted_before: set[str] = set()  # a first submission has no stage file to forget

        def take() -> list[TaskSpec]:
            """The next task's sources: one, or (local pool) a run of small ones."""
            batch = [pending.popleft()]
            if not chunked or batch[0].size > CHUNK_MAX_BYTES:
                return batch
            size = min(self.options.chunk_max, max(1, (len(pending) + 1) // (slots * CHUNKS_PER_SLOT)))
            while pending and len(batch) < size and pending[0].size <= CHUNK_MAX_BYTES:
                batch.append(pending.popleft())
            return batch

        def submit(batch: list[TaskSpec], suspect: bool) -> bool:
            try:
                if self.is_dask:
                    fut = self.executor.submit(fn, batch[0])
                else:
                    fut = self.executor.submit(_run_chunk, fn, tuple(batch))
            except (BrokenProcessPool, OSError):  # a worker died since the last wait: recover, then go on
                # (3.11 may also raise EBADF here when the pool's manager thread closed its wake-up pipe first)
                (suspects if suspect else pending).extendleft(reversed(batch))
                return False
            inflight[fut] = _Slot(tuple(batch), time.monotonic(), suspect)
            for spec in batch:
                if spec.source in submitted_before:
                    self._forget_stage(spec)  # a re-run after a dead worker starts from no stage
                else:
                    submitted_before.add(spec.source)
                if on_start is not None:
                    on_start(spec)
            return True

        submit_failures = 0
        while pending or suspects or inflight:
            submitted = True
            if suspects:
                if not inflight:  # isolate: one suspect alone on a fresh pool
                    submitted = submit([suspects.popleft()], True)
            else:
                # chunks of small dumps: one more per worker waits in the pool's queue, so a worker that
                # finishes a chunk starts the next at once instead of idling while its results travel back
                # and the next chunk is sent (a queued chunk's clock starts when its first source does)
                depth = 2 * slots if chunked and (not pending or pending[0].size <= CHUNK_MAX_BYTES) else slots
                while submitted and pending and len(inflight) < depth:
                    submitted = submit(take(), False)
            if not submitted:
                submit_failures += 1
                if submit_failures > 3:  # a fresh pool cannot take work either: not a dying task, give up
                    raise DbgautoError("the local process pool cannot start workers (see the log for the cause)")
                self._recover_broken(inflight, pending, suspects, on_done, engine)
                continue
            submit_failures = 0
            wait_for = 0.5
            if timeout is not None and inflight:
                soonest = min(s.started for s in inflight.values()) + timeout
                wait_for = max(0.01, min(wait_for, soonest - time.monotonic()))
            done, _ = wait(list(inflight), timeout=wait_for, return_when=FIRST_COMPLETED)
            if on_tick is not None:
                on_tick()
            if on_stage is not None and self._stage_dir is not None:
                for fut, slot in inflight.items():
                    if fut in done or len(slot.specs) > 1:  # a chunk's small dumps take milliseconds each
                        continue
                    now = read_stage(self._stage_dir, slot.spec.source)
                    if now is not None and now != slot.stage:
                        slot.stage = now
                        on_stage(slot.spec, now)
            broken = False
            for fut in done:
                slot = inflight[fut]
                try:
                    recs = _as_records(fut.result())
                except BrokenProcessPool:
                    broken = True
                    continue
                except Exception as exc:  # Dask KilledWorker, CancelledError, unpicklable result ...
                    code = "worker_died" if type(exc).__name__ == "KilledWorker" else "worker_error"
                    recs = [_failed(sp, code, f"{sp.source}: {type(exc).__name__}: {exc}", engine) for sp in slot.specs]
                del inflight[fut]
                for spec, rec in zip(slot.specs, recs, strict=True):
                    self._forget_stage(spec)
                    on_done(spec, rec)
            if broken:
                self._recover_broken(inflight, pending, suspects, on_done, engine)
                continue
            if timeout is not None:
                self._expire(inflight, pending, timeout, on_done, engine)

    def _current(self, slot: _Slot) -> tuple[int, float | None]:
        """Which source of a task its worker is on (the last one that wrote a stage) and, for a chunk, how long
        ago that one started (from its stage file; None when unknown); (-1, None) when none of its sources has
        started (a task still waiting in the pool's queue). Dask (no stage files): (0, None)."""
        if self._stage_dir is None:
            return 0, None
        for i in range(len(slot.specs) - 1, -1, -1):
            try:
                mtime = stage_path(self._stage_dir, slot.specs[i].source).stat().st_mtime
            except OSError:
                continue
            return i, max(0.0, time.time() - mtime) if len(slot.specs) > 1 else None
        return -1, None

    def _recover_broken(
        self,
        inflight: dict[Future[Any], _Slot],
        pending: collections.deque[TaskSpec],
        suspects: collections.deque[TaskSpec],
        on_done: Callable[[TaskSpec, ResultRecord], None],
        engine: str,
    ) -> None:
        """A worker died: the pool is gone. Fail the culprit if known, else isolate every task in flight (of a
        chunk, the source its worker was on; the chunk's others run again as usual)."""
        currents = {fut: self._current(slot)[0] for fut, slot in inflight.items()}  # read before the pool goes
        self._kill_local()
        requeue: list[TaskSpec] = []
        for fut, slot in list(inflight.items()):
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                for spec, rec in zip(slot.specs, _as_records(fut.result()), strict=True):
                    on_done(spec, rec)
            elif slot.suspect:
                on_done(
                    slot.spec,
                    _failed(
                        slot.spec,
                        "worker_died",
                        f"{slot.spec.source}: the worker process died while processing this dump "
                        "(crash or out of memory); the rest of the batch continued",
                        engine,
                    ),
                )
            else:
                i = currents[fut]
                if i >= 0:  # a task not started yet (queued) holds no suspect
                    suspects.append(slot.specs[i])
                requeue.extend(sp for j, sp in enumerate(slot.specs) if j != i)
        pending.extendleft(reversed(requeue))
        inflight.clear()
        log.warning("a worker process died; %d task(s) re-run one at a time to find which", len(suspects))

    def _expire(
        self,
        inflight: dict[Future[Any], _Slot],
        pending: collections.deque[TaskSpec],
        timeout: float,
        on_done: Callable[[TaskSpec, ResultRecord], None],
        engine: str,
    ) -> None:
        now = time.monotonic()
        expired: dict[Future[Any], int] = {}  # future -> the index of its source that is over time
        for fut, slot in inflight.items():
            if now - slot.started < timeout or fut.done():
                continue
            i, age = self._current(slot)
            if i < 0:  # still waiting in the pool's queue: its clock starts when it does
                slot.started = now
                continue
            if age is not None and age < timeout:  # a chunk: its current source has not used its time yet
                slot.started = now - age
                continue
            expired[fut] = i
        if not expired:
            return
        requeue: list[TaskSpec] = []
        for fut, i in expired.items():
            slot = inflight.pop(fut)
            fut.cancel()
            spec = slot.specs[i]
            requeue.extend(sp for j, sp in enumerate(slot.specs) if j != i)  # outputs are atomic: safe to re-run
            on_done(
                spec,
                _failed(
                    spec,
                    "task_timeout",
                    f"{spec.source}: no result after {timeout:g}s; the task was stopped and the batch moved on",
                    engine,
                ),
            )
        if not self.is_dask:
            # A hung worker cannot be stopped alone through the public API: recycle the pool and re-queue the
            # innocent tasks that were in flight with it (outputs are atomic, re-running is safe).
            for fut, slot in list(inflight.items()):
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    for spec, rec in zip(slot.specs, _as_records(fut.result()), strict=True):
                        on_done(spec, rec)
                else:
                    requeue.extend(slot.specs)
            inflight.clear()
            self._kill_local()
        pending.extendleft(reversed(requeue))
