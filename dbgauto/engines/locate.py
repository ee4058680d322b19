"""Finding cdb.exe / kd.exe: --debugger-path, DBGAUTO_CDB, PATH, the Windows Kits folders, the Store WinDbg.

A location may be a whole command line (``"python -m dbgauto shell"``), split with shlex, so that a
stand-in debugger (the native console) can be driven exactly like cdb. Every candidate is reported with
where it came from, for ``dbgauto doctor``.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DebuggerCandidate", "candidates", "find_debugger", "probe_version", "split_command_line"]

log = logging.getLogger(__name__)

ENV_VAR = "DBGAUTO_CDB"


@dataclass(frozen=True, slots=True)
class DebuggerCandidate:
    """One place a debugger may be: its argv, where that came from, and whether the program exists."""

    argv: tuple[str, ...]
    source: str  # "--debugger-path", "DBGAUTO_CDB", "PATH", "Windows Kits 10 (x64)", "WinDbg (Store)", ...
    exists: bool

    @property
    def display(self) -> str:
        return " ".join(self.argv)


def split_command_line(text: str) -> tuple[str, ...]:
    """A path (kept whole when it exists, spaces and all) or a command line split like a shell would."""
    stripped = text.strip()
    if Path(stripped.strip('"')).is_file():
        return (stripped.strip('"'),)
    parts = shlex.split(stripped, posix=os.name != "nt")
    return tuple(p.strip('"') for p in parts)


def _program_exists(argv: tuple[str, ...]) -> bool:
    if not argv:
        return False
    prog = argv[0]
    return Path(prog).is_file() or shutil.which(prog) is not None


def _kits_dirs(env: Mapping[str, str]) -> list[tuple[str, Path]]:
    """Debuggers folders of the Windows SDK / WDK (registry KitsRoot10 first, then the default folders)."""
    roots: list[tuple[str, Path]] = []
    if sys.platform == "win32":
        try:
            import winreg

            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\Windows Kits\Installed Roots") as k:
                roots.append(("Windows Kits 10 (registry)", Path(winreg.QueryValueEx(k, "KitsRoot10")[0])))
        except OSError:
            pass
    for var in ("ProgramFiles(x86)", "ProgramFiles"):
        base = env.get(var)
        if base:
            roots.append(("Windows Kits 10", Path(base) / "Windows Kits" / "10"))
            roots.append(("Windows Kits 8.1", Path(base) / "Windows Kits" / "8.1"))
    return [
        (f"{label} ({arch})", root / "Debuggers" / arch) for label, root in roots for arch in ("x64", "x86", "arm64")
    ]


def _store_dirs(env: Mapping[str, str]) -> list[tuple[str, Path]]:
    """The Store / standalone WinDbg keeps cdb.exe in its package folder (amd64, x86, arm64 subfolders)."""
    base = env.get("ProgramFiles")
    if not base:
        return []
    apps = Path(base) / "WindowsApps"
    try:
        packages = sorted(apps.glob("Microsoft.WinDbg_*"), reverse=True)  # newest version first
    except OSError:  # WindowsApps is not listable for most users; the folders may still be readable
        packages = []
    return [(f"WinDbg (Store) {pkg.name}", pkg / arch) for pkg in packages for arch in ("amd64", "x86", "arm64")]


def candidates(
    explicit: str | None = None, *, kind: str = "cdb", env: Mapping[str, str] | None = None
) -> list[DebuggerCandidate]:
    """Every place looked at, in the order they are tried."""
    env = os.environ if env is None else env
    exe = f"{kind}.exe"
    out: list[DebuggerCandidate] = []
    if explicit:
        argv = split_command_line(explicit)
        out.append(DebuggerCandidate(argv, "--debugger-path", _program_exists(argv)))
    if env.get(ENV_VAR):
        argv = split_command_line(env[ENV_VAR])
        out.append(DebuggerCandidate(argv, ENV_VAR, _program_exists(argv)))
    search = env.get("PATH")
    on_path = shutil.which(kind, path=search) or shutil.which(exe, path=search)
    out.append(DebuggerCandidate((on_path or exe,), "PATH", on_path is not None))
    if sys.platform == "win32" or env.get("ProgramFiles") or env.get("ProgramFiles(x86)"):
        for label, folder in (*_kits_dirs(env), *_store_dirs(env)):
            path = folder / exe
            out.append(DebuggerCandidate((str(path),), label, path.is_file()))
    return out


def find_debugger(
    explicit: str | None = None, *, kind: str = "cdb", env: Mapping[str, str] | None = None
) -> DebuggerCandidate | None:
    """The first candidate that exists; an explicit path that does not exist is not replaced by another one."""
    for cand in candidates(explicit, kind=kind, env=env):
        if cand.source == "--debugger-path" and not cand.exists:
            return None
        if cand.exists:
            return cand
    return None


def probe_version(argv: tuple[str, ...], *, timeout: float = 15.0) -> str | None:
    """``cdb -version`` → "10.0.26100.1" (None when it does not answer); for ``dbgauto doctor`` only."""
    try:
        proc = subprocess.run(
            [*argv, "-version"], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("%s -version: %s", argv, exc)
        return None
    for line in (proc.stdout + proc.stderr).splitlines():
        words = line.split()
        if "version" in (w.lower() for w in words):
            idx = [w.lower() for w in words].index("version")
            if idx + 1 < len(words):
                return words[idx + 1]
    return None
