"""The Helm chart as the tests see it: rendered by the real helm binary (the pinned one from `make binaries`).

The ``test_chart_*`` modules render through :func:`render` from here (pytest
puts tests/unit on ``sys.path``); each helm call takes a fraction of a second
and renders are cached per set of flags.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from modeldeploy_dev.binaries import find_existing

CHART = Path(__file__).resolve().parents[2] / "charts" / "modeldeploy"
RELEASE, NAMESPACE = "md", "ops"
NAMESPACED = ("--set", "watchNamespaces={a,b}")


@cache
def helm_binary() -> str:
    helm = find_existing("helm")
    if helm is None:
        pytest.skip("helm is not built yet: run `make binaries`")
    return str(helm)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=check, timeout=60)


@cache
def _render(args: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    out = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds", *args).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def render(*args: str) -> list[dict[str, Any]]:
    """The chart's objects for these helm flags (CRDs included), parsed."""
    return [dict(doc) for doc in _render(args)]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def refused(*args: str) -> str:
    """helm template's error for these flags (the test fails if helm renders them)."""
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args, check=False)
    assert result.returncode != 0, f"helm rendered {args}"
    return result.stderr
