"""Tests take shared helpers from support modules; conftest.py files hold fixtures only, which
pytest hands out by name, so nothing imports a conftest."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_nothing_imports_a_conftest() -> None:
    importing = set()
    for path in [*ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(name.split(".")[-1] == "conftest" for name in names):
                importing.add(str(path.relative_to(ROOT)))
    assert importing == set()
