"""The chart passes `helm lint --strict` and renders, in both modes; its values are checked by its schema."""

from __future__ import annotations

import pytest
import yaml
from helm_chart import CHART, NAMESPACE, NAMESPACED, RELEASE, helm, refused, render


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
