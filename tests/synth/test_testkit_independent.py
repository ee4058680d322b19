"""dbgauto_testkit never imports dbgauto (style.md §E): its dumps check dbgauto's readers, so their bytes must come
from the spec, not from dbgauto's structure code. Checked with ``ast`` over every module, imports inside functions
included, and by importing the package in a fresh interpreter and listing what got loaded."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dbgauto_testkit

PACKAGE = Path(dbgauto_testkit.__file__).resolve().parent


def _absolute_imports(tree: ast.AST) -> list[str]:
    """Every absolute import (relative ones stay inside dbgauto_testkit by construction)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.append(node.module or "")
    return names


def test_no_module_of_the_testkit_imports_dbgauto() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) >= 10  # dumpsynth and dumpinflate, not an empty folder
    offenders = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in modules
        for name in _absolute_imports(ast.parse(path.read_text(encoding="utf-8")))
        if name == "dbgauto" or name.startswith("dbgauto.")
    ]
    assert offenders == []
    # the scan does find imports: kworld.py takes its writer from dumpsynth
    writer_names = _absolute_imports(ast.parse((PACKAGE / "dumpinflate" / "kworld.py").read_text(encoding="utf-8")))
    assert "dbgauto_testkit.dumpsynth" in writer_names


def test_importing_the_testkit_loads_no_dbgauto_module() -> None:
    code = (
        "import sys, dbgauto_testkit.dumpsynth, dbgauto_testkit.dumpinflate; "
        "print(sorted(m for m in sys.modules if m == 'dbgauto' or m.startswith('dbgauto.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
