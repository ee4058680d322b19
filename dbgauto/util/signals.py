"""Stop requests from every OS: SIGTERM/SIGINT on POSIX; Ctrl+C, Ctrl+Break and console close on Windows.

Why: SIGTERM never arrives on Windows. A service manager or Task Scheduler stops a console program with
CTRL_BREAK_EVENT (Python's ``signal.SIGBREAK``) or by closing its console (CTRL_CLOSE_EVENT, LOGOFF,
SHUTDOWN, which Python does not map to signals: they need ``SetConsoleCtrlHandler``). Both ``dbgauto
schedule`` (finish the current run, then exit) and ``dbgauto batch`` (stop now: the pool is shut down and
the run recorded as interrupted, like Ctrl+C) install their reaction through :func:`on_stop`.

Seams: ``sig`` stands for the ``signal`` module and ``console`` for SetConsoleCtrlHandler, so tests run the
Windows side (SIGBREAK, the console-close callback) on Linux with stand-ins that record what was asked.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final

__all__ = ["CONSOLE_EVENTS", "interrupt_main", "on_stop", "stop_signals"]

log = logging.getLogger(__name__)

# wincon.h: CTRL_C_EVENT 0, CTRL_BREAK_EVENT 1, CTRL_CLOSE_EVENT 2, CTRL_LOGOFF_EVENT 5, CTRL_SHUTDOWN_EVENT 6
CONSOLE_EVENTS: Final = {2: "console closed", 5: "user logged off", 6: "system shutting down"}
CLOSE_GRACE: Final = 4.5  # Windows ends the process ~5 s after CTRL_CLOSE_EVENT whatever the handler does

Handler = Callable[[str], None]


def stop_signals(sig: Any = signal) -> list[int]:
    """The signals that mean "stop" here: SIGINT, SIGTERM, and SIGBREAK where it exists (Windows)."""
    names = ("SIGINT", "SIGTERM", "SIGBREAK")
    return [getattr(sig, n) for n in names if hasattr(sig, n)]


def _win_console_handler(callback: Callable[[int], bool]) -> Callable[[], None]:
    import ctypes
    from ctypes import wintypes

    proto = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)  # type: ignore[attr-defined]
    routine = proto(callback)
    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    if not k32.SetConsoleCtrlHandler(routine, True):
        raise OSError(ctypes.get_last_error(), "SetConsoleCtrlHandler failed")  # type: ignore[attr-defined]

    def remove() -> None:
        k32.SetConsoleCtrlHandler(routine, False)
        remove.routine = None  # type: ignore[attr-defined]

    remove.routine = routine  # type: ignore[attr-defined]  # keep the C callback alive while registered
    return remove


def on_stop(
    handler: Handler,
    *,
    sig: ModuleType | Any = signal,
    windows: bool | None = None,
    console: Callable[[Callable[[int], bool]], Callable[[], None]] | None = None,
    grace: float = CLOSE_GRACE,
) -> Callable[[], None]:
    """Call ``handler(reason)`` on any stop request; returns a function that restores the previous state.

    Signal handlers run in the main thread (not installable elsewhere: then only the console handler is
    set). The console handler runs in a thread Windows creates; after ``handler`` it waits up to ``grace``
    seconds so the main thread can finish cleaning up before Windows ends the process.
    """
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: object) -> None:
        name = {getattr(sig, n, None): n for n in ("SIGINT", "SIGTERM", "SIGBREAK")}.get(signum, str(signum))
        handler(name)

    for s in stop_signals(sig):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            previous[s] = sig.signal(s, on_signal)

    remove_console: Callable[[], None] | None = None
    if (sys.platform == "win32") if windows is None else windows:

        def on_console(event: int) -> bool:
            reason = CONSOLE_EVENTS.get(event)
            if reason is None:
                return False  # Ctrl+C / Ctrl+Break: the signal handlers above take them
            handler(reason)
            time.sleep(grace)
            return True

        try:
            remove_console = (console or _win_console_handler)(on_console)
        except (OSError, AttributeError) as exc:
            log.debug("no console handler: %s", exc)

    def restore() -> None:
        for s, h in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                sig.signal(s, h)
        if remove_console is not None:
            remove_console()

    return restore


def interrupt_main(reason: str) -> None:
    """Turn a stop request into KeyboardInterrupt in the main thread (the batch's Ctrl+C path).

    From a signal handler (main thread) it raises at once; from the console-handler thread it makes the
    main thread run its SIGINT handler, which lands here again in the main thread.
    """
    if threading.current_thread() is threading.main_thread():
        log.warning("stop requested (%s): stopping the batch", reason)
        raise KeyboardInterrupt(reason)
    _thread.interrupt_main()
