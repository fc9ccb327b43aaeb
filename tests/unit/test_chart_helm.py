"""The chart passes `helm lint --strict` and renders, in both modes; its values are checked by its schema.

These tests run the real helm binary (the pinned one from `make binaries`),
which takes a fraction of a second per call. The other ``test_chart_*``
modules render through :func:`render` from here (pytest puts tests/unit on
``sys.path``).
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


@pytest.mark.parametrize("args", [(), NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_helm_lint_strict_is_clean(args: tuple[str, ...]) -> None:
    result = helm("lint", "--strict", str(CHART), *args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


@pytest.mark.parametrize("args", [(), NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_helm_template_renders_without_warnings(args: tuple[str, ...]) -> None:
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert result.stderr == ""


OPTIONAL = (
    "--set",
    "serviceMonitor.enabled=true,podDisruptionBudget.enabled=true,peering.enabled=true,replicas=2",
)


def test_everything_optional_renders_and_lints_together() -> None:
    kinds = {d["kind"] for d in render(*OPTIONAL)}
    assert {"ServiceMonitor", "PodDisruptionBudget", "ClusterKopfPeering"} <= kinds
    assert helm("lint", "--strict", str(CHART), *OPTIONAL, check=False).returncode == 0


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--set", "replicaCount=2"), "additional properties 'replicaCount' not allowed"),
        (("--set", "image.tag=1"), "/image/tag"),
        (("--set", "logFormat=xml"), "/logFormat"),
        (("--set", "watchNamespaces={Team_A}"), "/watchNamespaces/0"),
        (("--set", "watchNamespaces={a,a}"), "/watchNamespaces"),
        (("--set", "prometheusUrl=prometheus:9090"), "/prometheusUrl"),
        (("--set", "metrics.port=0"), "/metrics/port"),
        (("--set", "peering.enabled=yes"), "/peering/enabled"),
        (("--set", "extraArgs={--ok,not-a-flag}"), "/extraArgs/1"),
    ],
    ids=[
        "unknown-key",
        "tag-not-a-string",
        "log-format",
        "namespace-not-a-dns-label",
        "namespace-twice",
        "prometheus-url-without-scheme",
        "port-zero",
        "boolean-as-string",
        "extra-arg-not-a-flag",
    ],
)
def test_the_schema_refuses_bad_values(args: tuple[str, ...], complaint: str) -> None:
    assert complaint in refused(*args)


def test_more_than_one_replica_without_peering_is_refused() -> None:
    assert "replicas > 1 needs peering.enabled=true" in refused("--set", "replicas=2")


def test_metrics_and_health_on_one_port_are_refused() -> None:
    assert "must differ" in refused("--set", "health.port=8080")


def test_default_values_file_is_valid_yaml_with_every_documented_key() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) >= {
        "image",
        "replicas",
        "watchNamespaces",
        "prometheusUrl",
        "logFormat",
        "resources",
        "podSecurityContext",
        "securityContext",
        "metrics",
        "serviceMonitor",
        "podDisruptionBudget",
        "peering",
        "dashboard",
    }
