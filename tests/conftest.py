"""Shared fixtures: where the real dumps and ground truth live.

Real Windows-written dumps are read from ``../shared`` (beside the repository); they are never copied into
the repo. Tests that need them skip with a clear reason when ``../shared`` is absent.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

# --- DBGAUTO_SIMULATE_WINDOWS=1: run the suite with the POSIX-only functions gone -----------------------------
# Removed before any dbgauto module is imported (conftest is imported first): os.pread, os.posix_fadvise,
# os.setsid, os.killpg, os.fchmod, signal.SIGKILL, and the fcntl module (import fails). Third-party modules that
# need fcntl on Linux (pexpect, filelock) are imported first so they keep working: on Windows they use their
# own Windows code, which only the Windows CI job runs. Popen.kill and multiprocessing's kill use SIGKILL on
# POSIX; Windows kills with TerminateProcess, so they get the same "kill that process" with signal 9 here.
# What it proves: every dbgauto path these tests reach works without the POSIX-only calls; not that the
# Win32 calls behind the seams (Job Objects, code pages, console handlers) work: the Windows job does that.
SIMULATE_WINDOWS = os.environ.get("DBGAUTO_SIMULATE_WINDOWS") == "1"
POSIX_ONLY: tuple[tuple[str, str], ...] = (
    ("os", "pread"),
    ("os", "posix_fadvise"),
    ("os", "setsid"),
    ("os", "killpg"),
    ("os", "fchmod"),
    ("os", "geteuid"),
    ("signal", "SIGKILL"),
)


def _simulate_windows() -> None:
    import multiprocessing.popen_fork
    import signal  # noqa: F401 - POSIX_ONLY edits it through sys.modules
    import subprocess

    import filelock  # noqa: F401 - imported while fcntl still exists (see above)
    import pexpect  # noqa: F401

    assert not any(name == "dbgauto" or name.startswith("dbgauto.") for name in sys.modules), "dbgauto imported early"
    for module, name in POSIX_ONLY:
        if hasattr(sys.modules[module], name):
            delattr(sys.modules[module], name)
    sys.modules["fcntl"] = None  # type: ignore[assignment]  # `import fcntl` raises ImportError

    def popen_kill(self: subprocess.Popen[Any]) -> None:
        self.send_signal(9)

    def mp_kill(self: Any) -> None:
        self._send_signal(9)

    subprocess.Popen.kill = popen_kill  # type: ignore[method-assign]
    multiprocessing.popen_fork.Popen.kill = mp_kill  # type: ignore[method-assign]


if SIMULATE_WINDOWS:
    _simulate_windows()

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DBGAUTO_SHARED", REPO.parent / "shared"))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not available (the shared material ../shared sits beside the repository in CI)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def triage_x64_path() -> Path:
    """The real Windows-written small memory dump (x64, build 19041)."""
    return _need(SHARED / "dumps" / "triage_x64.dmp")


@pytest.fixture(scope="session")
def groundtruth_x64() -> dict[str, Any]:
    """What rizin and an independent cross-check reader say triage_x64.dmp contains (values only)."""
    raw = json.loads(_need(SHARED / "groundtruth" / "triage_x64.json").read_text())
    return {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in raw.items()}


@pytest.fixture(scope="session")
def transcripts_dir() -> Path:
    return _need(SHARED / "transcripts")


@pytest.fixture(scope="session", autouse=True)
def _hermetic_symbols(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """No test reads the user's symbol path or cache: an empty cache of its own, no DBGAUTO_SYMBOL_PATH or
    _NT_SYMBOL_PATH (subprocesses inherit this environment). Tests that want symbols pass --symbols."""
    saved = {k: os.environ.get(k) for k in ("DBGAUTO_SYMBOL_CACHE", "DBGAUTO_SYMBOL_PATH", "_NT_SYMBOL_PATH")}
    os.environ["DBGAUTO_SYMBOL_CACHE"] = str(tmp_path_factory.mktemp("symbol-cache"))
    os.environ.pop("DBGAUTO_SYMBOL_PATH", None)
    os.environ.pop("_NT_SYMBOL_PATH", None)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
