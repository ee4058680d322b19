"""Child processes the portable way: a process group per debugger, a Job Object on Windows, tree kills,
"is my parent alive", and the code page a Windows console program really writes.

Why a seam: every choice here differs by OS. Each function decides with capabilities (``hasattr(os,
"killpg")``) or an explicit ``windows`` argument, so the Linux suite runs both sides, and the POSIX-removed
test job (tests/conftest.py, ``DBGAUTO_SIMULATE_WINDOWS=1``) runs the code with ``os.setsid``,
``os.killpg`` and ``signal.SIGKILL`` gone. The Win32 calls (Job Objects, OpenProcess, code pages) live in
:class:`JobObject` and the small ``_win_*`` helpers and only run on Windows (tested by the Windows CI job).

Windows order of a tree kill: the Job Object (``TerminateJobObject``: every process the debugger started,
atomically; and ``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`` kills them even when our worker dies without
cleaning up), then ``taskkill /F /T`` only as a fallback when no job could be created (nested jobs refused
on old systems), then ``Popen.kill``.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "CREATE_NEW_PROCESS_GROUP",
    "JobObject",
    "console_encoding",
    "interrupt",
    "kill_tree",
    "pid_alive",
    "spawn_kwargs",
]

log = logging.getLogger(__name__)

CREATE_NEW_PROCESS_GROUP: Final = 0x00000200  # winbase.h; subprocess exports it only on Windows
_JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: Final = 0x2000
_JOB_OBJECT_EXTENDED_LIMIT_INFORMATION: Final = 9
_PROCESS_TERMINATE_AND_QUOTA: Final = 0x0001 | 0x0100  # PROCESS_TERMINATE | PROCESS_SET_QUOTA
_PROCESS_QUERY_LIMITED_INFORMATION: Final = 0x1000
_STILL_ACTIVE: Final = 259


def _is_windows(windows: bool | None) -> bool:
    return sys.platform == "win32" if windows is None else windows


def spawn_kwargs(*, windows: bool | None = None) -> dict[str, Any]:
    """``subprocess.Popen`` arguments that give the child its own process group.

    Windows: ``CREATE_NEW_PROCESS_GROUP`` explicitly, so Ctrl+Break reaches the debugger alone and works
    without a console (Task Scheduler, services). POSIX: a new session (``start_new_session``, setsid in
    the child, done by subprocess without ``preexec_fn``), so ``killpg`` takes the whole tree.
    """
    if _is_windows(windows):
        return {"creationflags": CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def interrupt(proc: subprocess.Popen[Any], *, windows: bool | None = None) -> None:
    """Ask a debugger to stop its command: Ctrl+Break on Windows, SIGINT elsewhere."""
    sig = getattr(signal, "CTRL_BREAK_EVENT", None) if _is_windows(windows) else signal.SIGINT
    if sig is None:
        sig = signal.SIGINT
    with contextlib.suppress(OSError, ValueError):
        proc.send_signal(sig)


class JobObject:
    """A Win32 Job Object with kill-on-close; every process assigned to it dies with the job handle."""

    def __init__(self) -> None:
        import ctypes
        from ctypes import wintypes

        self._ctypes = ctypes
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        k32.CreateJobObjectW.restype = wintypes.HANDLE
        k32.OpenProcess.restype = wintypes.HANDLE
        self._k32 = k32
        handle = k32.CreateJobObjectW(None, None)
        if not handle:
            raise OSError(ctypes.get_last_error(), "CreateJobObjectW failed")  # type: ignore[attr-defined]
        self.handle: int | None = handle

        class _Basic(ctypes.Structure):
            _fields_ = [
                ("PerProcessUserTimeLimit", ctypes.c_int64),
                ("PerJobUserTimeLimit", ctypes.c_int64),
                ("LimitFlags", wintypes.DWORD),
                ("MinimumWorkingSetSize", ctypes.c_size_t),
                ("MaximumWorkingSetSize", ctypes.c_size_t),
                ("ActiveProcessLimit", wintypes.DWORD),
                ("Affinity", ctypes.c_size_t),
                ("PriorityClass", wintypes.DWORD),
                ("SchedulingClass", wintypes.DWORD),
            ]

        class _Io(ctypes.Structure):
            _fields_ = [(n, ctypes.c_uint64) for n in ("r", "w", "o", "rb", "wb", "ob")]

        class _Extended(ctypes.Structure):
            _fields_ = [
                ("BasicLimitInformation", _Basic),
                ("IoInfo", _Io),
                ("ProcessMemoryLimit", ctypes.c_size_t),
                ("JobMemoryLimit", ctypes.c_size_t),
                ("PeakProcessMemoryUsed", ctypes.c_size_t),
                ("PeakJobMemoryUsed", ctypes.c_size_t),
            ]

        info = _Extended()
        info.BasicLimitInformation.LimitFlags = _JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        ok = k32.SetInformationJobObject(
            wintypes.HANDLE(handle), _JOB_OBJECT_EXTENDED_LIMIT_INFORMATION, ctypes.byref(info), ctypes.sizeof(info)
        )
        if not ok:
            err = ctypes.get_last_error()  # type: ignore[attr-defined]
            self.close()
            raise OSError(err, "SetInformationJobObject failed")

    def assign(self, pid: int) -> None:
        """Put process ``pid`` (and so every process it starts later) into the job."""
        from ctypes import wintypes

        proc = self._k32.OpenProcess(_PROCESS_TERMINATE_AND_QUOTA, False, pid)
        if not proc:
            raise OSError(self._ctypes.get_last_error(), f"OpenProcess({pid}) failed")
        try:
            if not self._k32.AssignProcessToJobObject(wintypes.HANDLE(self.handle), wintypes.HANDLE(proc)):
                raise OSError(self._ctypes.get_last_error(), f"AssignProcessToJobObject({pid}) failed")
        finally:
            self._k32.CloseHandle(wintypes.HANDLE(proc))

    def terminate(self, exit_code: int = 1) -> None:
        from ctypes import wintypes

        if self.handle:
            self._k32.TerminateJobObject(wintypes.HANDLE(self.handle), exit_code)

    def close(self) -> None:
        """Close the handle: with kill-on-close, every process still in the job is killed."""
        from ctypes import wintypes

        if self.handle:
            self._k32.CloseHandle(wintypes.HANDLE(self.handle))
            self.handle = None


def new_job(*, windows: bool | None = None) -> JobObject | None:
    """A kill-on-close Job Object on Windows (None elsewhere, or when Windows refuses one)."""
    if not _is_windows(windows):
        return None
    try:
        return JobObject()
    except (OSError, AttributeError) as exc:
        log.debug("no job object: %s", exc)
        return None


def kill_tree(
    proc: subprocess.Popen[Any],
    *,
    job: JobObject | None = None,
    windows: bool | None = None,
    run: Callable[..., Any] = subprocess.run,
) -> str:
    """Kill ``proc`` and everything it started; returns which way was used (for logs and tests).

    Windows: the job, else ``taskkill /F /T`` (``run`` is the seam), then ``proc.kill()``. POSIX: ``killpg``
    of the child's own group (see :func:`spawn_kwargs`) with SIGKILL, else ``proc.kill()`` when the
    platform has no process groups.
    """
    if _is_windows(windows):
        if job is not None and job.handle:
            job.terminate()
            return "job"
        if proc.poll() is None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, timeout=30, check=False)
            with contextlib.suppress(OSError):
                proc.kill()
        return "taskkill"
    killpg = getattr(os, "killpg", None)
    if killpg is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            killpg(proc.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        return "killpg"
    with contextlib.suppress(OSError):
        proc.kill()
    return "kill"


def _win_pid_alive(pid: int) -> bool:
    import ctypes
    from ctypes import wintypes

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    k32.OpenProcess.restype = wintypes.HANDLE
    handle = k32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return ctypes.get_last_error() == 5  # type: ignore[attr-defined]  # ERROR_ACCESS_DENIED: it exists
    try:
        code = wintypes.DWORD()
        if not k32.GetExitCodeProcess(wintypes.HANDLE(handle), ctypes.byref(code)):
            return True
        return code.value == _STILL_ACTIVE
    finally:
        k32.CloseHandle(wintypes.HANDLE(handle))


def pid_alive(pid: int, *, windows: bool | None = None) -> bool:
    """Is process ``pid`` running? Never signals it (on Windows ``os.kill(pid, 0)`` would *terminate* it)."""
    if _is_windows(windows):
        return _win_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, owned by someone else
        return True
    return True


def _win_code_pages() -> tuple[int, int]:
    import ctypes

    k32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined]
    return int(k32.GetConsoleOutputCP()), int(k32.GetOEMCP())


def console_encoding(*, windows: bool | None = None, code_pages: Callable[[], tuple[int, int]] | None = None) -> str:
    """The encoding a Windows console program (cdb/kd) writes to our pipe; UTF-8 elsewhere.

    cdb inherits our console and converts its text with the console output code page; with no console
    (Task Scheduler, services) GetConsoleOutputCP returns 0 and the OEM code page applies.
    ``locale.getpreferredencoding()`` is wrong here: in Python's UTF-8 mode it says UTF-8 whatever the
    console uses. ``code_pages`` returns (console output CP, OEM CP) and is the seam tests use.
    """
    if not _is_windows(windows):
        return "utf-8"
    try:
        console_cp, oem_cp = (code_pages or _win_code_pages)()
    except (OSError, AttributeError):
        return "utf-8"
    for cp in (console_cp, oem_cp):
        if cp == 65001:
            return "utf-8"
        if cp:
            try:
                return codecs.lookup(f"cp{cp}").name
            except LookupError:
                continue
    return "utf-8"
