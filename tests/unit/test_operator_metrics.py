"""The operator exports exactly the metrics the chart's dashboard is built on, derived from status."""

from __future__ import annotations

from pathlib import Path

import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import modeldeploy.handlers  # noqa: F401 - registers every operator metric
from modeldeploy.plan.outputs import Event, Plan
from modeldeploy.reconcile.metrics import export, forget

CONTRACT = Path(__file__).resolve().parents[2] / "charts" / "modeldeploy" / "dashboards" / "metrics.yaml"


def families() -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(generate_latest(REGISTRY).decode())}


def sample(family: str, /, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(family, labels)


PLAN = Plan(
    status={
        "phase": "Progressing",
        "traffic": [
            {"revision": "a", "role": "stable", "weight": 75},
            {"revision": "b", "role": "candidate", "weight": 25},
        ],
        "analysis": [{"metric": "error-rate", "phase": "Successful", "value": 0.003}],
        "history": [],
    },
    events=(Event("Normal", "Promoted", "x"),),
)


def test_every_metric_the_dashboard_uses_is_exported_with_its_type_and_labels() -> None:
    export("risk", "fraud", PLAN)
    exported = families()
    contract = yaml.safe_load(CONTRACT.read_text())
    for name, spec in contract.items():
        family_name = name.removesuffix("_total") if spec["type"] == "counter" else name
        assert family_name in exported, f"{name} is on the dashboard but not exported"
        family = exported[family_name]
        assert family.type == spec["type"], (name, family.type)  # type: ignore[attr-defined]
        label_sets = {
            frozenset(k for k in s.labels if k not in ("le",))  # type: ignore[attr-defined]
            for s in family.samples  # type: ignore[attr-defined]
        }
        if label_sets:
            assert frozenset(spec["labels"]) in label_sets, (name, label_sets)


def test_values_follow_the_status() -> None:
    export("risk", "fraud", PLAN)
    assert sample("modeldeploy_phase", namespace="risk", name="fraud", phase="Progressing") == 1
    assert sample("modeldeploy_phase", namespace="risk", name="fraud", phase="Stable") == 0
    assert sample("modeldeploy_traffic_weight", namespace="risk", name="fraud", role="candidate") == 25
    assert sample("modeldeploy_analysis_value", namespace="risk", name="fraud", metric="error-rate") == 0.003
    verdict = {"namespace": "risk", "name": "fraud", "metric": "error-rate"}
    assert sample("modeldeploy_analysis_verdict", **verdict, verdict="Successful") == 1
    assert sample("modeldeploy_analysis_verdict", **verdict, verdict="Failed") == 0
    assert (sample("modeldeploy_promotions_total", namespace="risk", name="fraud") or 0) >= 1
    forget("risk", "fraud")
    assert sample("modeldeploy_phase", namespace="risk", name="fraud", phase="Progressing") is None
    assert sample("modeldeploy_analysis_value", namespace="risk", name="fraud", metric="error-rate") is None


def test_revision_replicas_per_role_come_from_the_observed_deployments() -> None:
    from modeldeploy.plan.inputs import Observed, RevisionState

    plan = Plan(status={**PLAN.status, "stable": {"revision": "a"}, "candidate": {"revision": "b"}})
    observed = Observed(
        revisions={
            "a": RevisionState("a", replicas=10, ready=9),
            "b": RevisionState("b", replicas=3, ready=2),
        }
    )
    export("ns", "scaled", plan, observed)
    assert sample("modeldeploy_revision_replicas", namespace="ns", name="scaled", role="stable") == 10
    assert sample("modeldeploy_revision_replicas", namespace="ns", name="scaled", role="candidate") == 3
    assert sample("modeldeploy_revision_ready_replicas", namespace="ns", name="scaled", role="candidate") == 2
    assert sample("modeldeploy_revision_replicas", namespace="ns", name="scaled", role="fallback") == 0
    forget("ns", "scaled")
    assert sample("modeldeploy_revision_replicas", namespace="ns", name="scaled", role="stable") is None
