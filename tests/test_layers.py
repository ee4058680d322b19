"""The shape of the package: every import goes down the layer order of ``dbgauto.layers`` (or stays in its own
package), imports inside functions included, and nothing imports a sibling package of the same tier."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dbgauto
from dbgauto.layers import TIERS, tier_of

PACKAGE = Path(dbgauto.__file__).resolve().parent


def _top(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, imported dbgauto.<top>) for every import in the module, at any depth."""
    found = []
    pkg = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
                names = [target]
            elif node.module == "dbgauto":
                names = [f"dbgauto.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "dbgauto" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "templates" not in p.parts)


def test_every_package_has_a_tier() -> None:
    tops = {_top(p) for p in _modules()}
    unknown = sorted(t for t in tops if not any(t in names for names in TIERS))
    assert unknown == [], f"add these to dbgauto/layers.py TIERS: {unknown}"


def test_imports_only_go_down() -> None:
    bad = []
    for path in _modules():
        top = _top(path)
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        if path.name == "__init__.py":
            module += ".__init__"
        for line, target in _imports(ast.parse(path.read_text(encoding="utf-8")), module):
            if target == top:
                continue
            if tier_of(target) >= tier_of(top):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {top} (tier {tier_of(top)}) imports "
                           f"{target} (tier {tier_of(target)})")
    assert bad == [], "upward or sideways imports:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import dbgauto.engines.native\n", ["engines"]),
        ("def f():\n    from dbgauto.report import render\n", ["report"]),
        ("from dbgauto import cli\n", ["cli"]),
        ("from ..engines import base\n", ["engines"]),
        ("from .policy import x\n", ["convert"]),
        ("import os\n", []),
    ],
)
def test_the_scanner_sees_every_import_form(source: str, expected: list[str]) -> None:
    assert [t for _, t in _imports(ast.parse(source), "dbgauto.convert.write")] == expected
