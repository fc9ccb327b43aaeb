"""Test modules have unique basenames: pytest's default import mode cannot load two with the same name."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_basename() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def test_no_test_module_imports_another_test_module_or_a_conftest() -> None:
    """Shared helpers live in helper modules (planner_world.py, helm_chart.py, ...), fixtures in conftest.py.

    A test module imported by another runs its tests' module code twice under
    two names and drags its fixtures along by name; pytest finds conftest
    fixtures without any import.
    """
    offenders = {
        f"{path.relative_to(TESTS)} imports {module}"
        for path in TESTS.rglob("*.py")
        for module in imported_modules(path)
        if any(part.startswith("test_") or part == "conftest" for part in module.lstrip(".").split("."))
    }
    assert sorted(offenders) == []
