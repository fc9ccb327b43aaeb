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


def test_what_a_status_leaves_out_keeps_its_last_value_and_a_metric_it_drops_goes() -> None:
    from modeldeploy.plan.inputs import Observed, RevisionState

    labels = {"namespace": "ns", "name": "kept"}
    first = {
        **PLAN.status,
        "stable": {"revision": "a"},
        "analysis": [
            {"metric": "error-rate", "phase": "Successful", "value": 0.01},
            {"metric": "latency", "phase": "Successful", "value": 0.2},
        ],
        "monitoring": [{"metric": "drift", "value": 0.3}],
    }
    export(
        "ns", "kept", Plan(status=first), Observed(revisions={"a": RevisionState("a", replicas=4, ready=4)})
    )
    export("ns", "kept", Plan(status=None))  # no status decided: every series as it was
    assert sample("modeldeploy_phase", **labels, phase="Progressing") == 1
    second = {
        **first,
        "phase": "Stable",
        "analysis": [{"metric": "error-rate", "phase": "Failed"}],  # no value this time; latency gone
        "monitoring": [{"metric": "drift"}],
    }
    export("ns", "kept", Plan(status=second))  # nothing observed: the replica counts as they were
    assert sample("modeldeploy_phase", **labels, phase="Stable") == 1
    assert sample("modeldeploy_phase", **labels, phase="Progressing") == 0
    assert sample("modeldeploy_analysis_value", **labels, metric="error-rate") == 0.01
    assert sample("modeldeploy_analysis_verdict", **labels, metric="error-rate", verdict="Failed") == 1
    assert sample("modeldeploy_analysis_value", **labels, metric="latency") is None
    assert sample("modeldeploy_analysis_verdict", **labels, metric="latency", verdict="Successful") is None
    assert sample("modeldeploy_monitoring_value", **labels, metric="drift") == 0.3
    assert sample("modeldeploy_revision_ready_replicas", **labels, role="stable") == 4
    forget("ns", "kept")
    assert sample("modeldeploy_monitoring_value", **labels, metric="drift") is None
    assert sample("modeldeploy_revision_ready_replicas", **labels, role="stable") is None


def test_the_gauges_of_a_model_deployment_are_one_record_written_out_at_each_scrape() -> None:
    """Not a prometheus_client Gauge, which keeps an object with a lock per series (0.8 kB): 25 of
    them for this canary, and more per analysis metric. The memory is measured by `make bench`."""
    from modeldeploy.plan.inputs import Observed, RevisionState
    from modeldeploy.reconcile.metrics import StatusCollector, _records

    observed = Observed(revisions={"a": RevisionState("a", replicas=2, ready=2)})
    export("one", "record", Plan(status={**PLAN.status, "stable": {"revision": "a"}}), observed)
    try:
        series = [line for line in generate_latest(REGISTRY).decode().splitlines() if 'name="record"' in line]
        assert len(series) == 25  # eight phases, three roles in three gauges, four verdicts and a value...
        assert [key for key in _records if key[0] == "one"] == [("one", "record")]
        names = REGISTRY._collector_to_names  # which collector writes which metric
        for collector, written in names.items():
            if "modeldeploy_phase" in written or "modeldeploy_revision_ready_replicas" in written:
                assert isinstance(collector, StatusCollector), collector
    finally:
        forget("one", "record")


def test_a_deleted_modeldeployments_counters_go_with_it() -> None:
    counted = Plan(
        status={"history": [{"reason": "AnalysisFailed"}]},
        events=(
            Event("Normal", "Promoted", "x"),
            Event("Warning", "RolledBack", "x"),
            Event("Normal", "RetrainStarted", "x"),
        ),
    )
    export("churn", "gone", counted)
    export("churn", "kept", counted)
    series = [
        ("modeldeploy_promotions_total", {}),
        ("modeldeploy_rollbacks_total", {"reason": "AnalysisFailed"}),
        ("modeldeploy_retrains_total", {"event": "started"}),
    ]
    assert [sample(family, namespace="churn", name="gone", **labels) for family, labels in series] == [
        1,
        1,
        1,
    ]
    forget("churn", "gone")
    assert [sample(family, namespace="churn", name="gone", **labels) for family, labels in series] == [
        None
    ] * 3
    assert [sample(family, namespace="churn", name="kept", **labels) for family, labels in series] == [
        1,
        1,
        1,
    ]
    forget("churn", "kept")
