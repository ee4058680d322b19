"""No POSIX-only call outside the seam modules (hazard groups 1, 5, 6, 10): checked with ast over every module.

The POSIX-removed job (DBGAUTO_SIMULATE_WINDOWS=1 in .ci/run) proves the paths its tests reach; this guard
covers the paths no test reaches. Seams: dbgauto/util/fs.py (reads, advice), util/proc.py (process groups,
kills), util/signals.py (stop requests), each with both sides tested.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEAMS = {"dbgauto/util/fs.py", "dbgauto/util/proc.py", "dbgauto/util/signals.py"}
FORBIDDEN_ATTRS = {
    ("os", "pread"),
    ("os", "pwrite"),
    ("os", "posix_fadvise"),
    ("os", "setsid"),
    ("os", "killpg"),
    ("os", "getpgid"),
    ("os", "fchmod"),
    ("os", "geteuid"),
    ("os", "umask"),
    ("os", "fork"),
    ("signal", "SIGKILL"),
    ("signal", "SIGTERM"),
    ("signal", "SIGHUP"),
    ("signal", "SIGALRM"),
    ("locale", "getpreferredencoding"),
}
FORBIDDEN_MODULES = {"fcntl", "termios", "pty", "resource", "pwd", "grp"}
FORBIDDEN_KEYWORDS = {"preexec_fn"}


def offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN_ATTRS:
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module in FORBIDDEN_MODULES:
            found.append(f"{node.lineno}: from {node.module} import")
        elif isinstance(node, ast.keyword) and node.arg in FORBIDDEN_KEYWORDS:
            found.append(f"{node.lineno}: {node.arg}=")
    return found


def test_posix_only_calls_live_in_the_seams() -> None:
    bad = {}
    for path in sorted((REPO / "dbgauto").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel not in SEAMS and (found := offences(path)):
            bad[rel] = found
    assert bad == {}


def test_the_guard_sees_what_it_forbids(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text(
        "import os, fcntl\nimport signal\nos.pread(0, 1, 0)\nos.kill(1, signal.SIGKILL)\n"
        "import subprocess\nsubprocess.Popen(['x'], preexec_fn=os.setsid)\nos.umask(0)\n"
    )
    assert sorted(offences(sample)) == [
        "1: import fcntl",
        "3: os.pread",
        "4: signal.SIGKILL",
        "6: os.setsid",
        "6: preexec_fn=",
        "7: os.umask",
    ]
