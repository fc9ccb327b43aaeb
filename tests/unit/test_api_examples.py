"""Every example in examples/ is a valid manifest, and reading it changes nothing (GitOps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modeldeploy.api import Router, lint_manifest, parse_manifest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
EXPECTED = {
    "minimal",
    "canary-gateway-api",
    "blue-green-service-router",
    "warmup-shadow-canary-istio",
    "fallback-static-response",
    "fallback-previous-revision",
    "champion-challenger",
    "monitoring-retrain-job",
    "retired",
}


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def test_every_promised_example_exists() -> None:
    assert {path.stem for path in EXAMPLES} >= EXPECTED


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_has_no_problems(path: Path) -> None:
    assert lint_manifest(load(path)) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_round_trips_unchanged(path: Path) -> None:
    document = load(path)
    assert parse_manifest(document).to_wire(exclude_unset=True) == document


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_starts_with_a_comment_explaining_it(path: Path) -> None:
    assert path.read_text().startswith("# ")


def test_minimal_example_gets_its_defaults_from_the_models() -> None:
    spec = parse_manifest(load(EXAMPLES[[p.stem for p in EXAMPLES].index("minimal")])).spec
    assert (spec.replicas, spec.router, spec.runtime.port, spec.revision_history_limit) == (
        1,
        Router.SERVICE,
        8080,
        5,
    )
    assert (spec.paused, spec.locked, spec.retired, spec.strategy, spec.analysis) == (
        False,
        False,
        False,
        None,
        None,
    )
