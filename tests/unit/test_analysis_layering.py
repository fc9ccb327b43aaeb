"""The analysis layer talks to Prometheus only: no kopf, no Kubernetes client, no upper layers.

The import-linter contracts cover api and plan; this test keeps the same promise
for analysis by reading its modules' imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import modeldeploy.analysis

FORBIDDEN = (
    "kopf",
    "kubernetes",
    "modeldeploy.kube",
    "modeldeploy.plan",
    "modeldeploy.reconcile",
    "modeldeploy.handlers",
    "modeldeploy.cli",
    "modeldeploy_dev",
)


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_analysis_imports_neither_kopf_kubernetes_nor_upper_layers() -> None:
    package = Path(modeldeploy.analysis.__file__).parent
    sources = sorted(package.glob("*.py"))
    assert len(sources) > 3
    offenders = {
        f"{source.name}: {module}"
        for source in sources
        for module in imported_modules(source)
        if any(module == f or module.startswith(f + ".") for f in FORBIDDEN)
    }
    assert not offenders
