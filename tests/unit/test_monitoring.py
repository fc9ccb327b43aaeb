"""After promotion: drift and decay set conditions and start retraining, once per cooldown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from planner_world import NAME, World, spec

from modeldeploy.api import MetricResult, WebhookOutcome
from modeldeploy.plan.inputs import Inputs

JOB = {
    "spec": {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "train",
                        "image": "ghcr.io/acme/trainer:1",
                        "env": [{"name": "DRIFT_METRIC", "value": "x"}],
                    }
                ],
            }
        },
    }
}
MONITORING: dict[str, Any] = {
    "interval": "10s",
    "failureLimit": 2,
    "metrics": [
        {"name": "drift-psi", "query": "psi", "max": 0.2},
        {"name": "accuracy", "query": "acc", "min": 0.9, "kind": "Performance"},
    ],
    "retrain": {"jobTemplate": JOB, "cooldown": "1h"},
}


def stable_world(monitoring: dict[str, Any] = MONITORING) -> World:
    world = World(spec("1.0.0", monitoring=monitoring))
    world.reconcile()
    world.ready_all()
    world.settle()
    assert world.status["phase"] == "Stable"
    return world


def measured(world: World, psi: float | None, accuracy: float = 0.95, failures: int = 0) -> Inputs:
    at = world.now + timedelta(seconds=11)
    phase = "Inconclusive" if psi is None else ("Failed" if psi > 0.2 else "Successful")
    return Inputs(
        monitoring=(
            MetricResult(
                metric="drift-psi",
                phase=phase,
                value=psi,
                failures=failures if phase == "Failed" else 0,
                inconclusive=1 if psi is None else 0,
                measured_at=at,
                message=f"drift-psi {psi} > max 0.2" if phase == "Failed" else "ok",
            ),
            MetricResult(metric="accuracy", phase="Successful", value=accuracy, measured_at=at, message="ok"),
        )
    )


def condition(world: World, type_: str) -> str | None:
    return next((c["status"] for c in world.status["conditions"] if c["type"] == type_), None)


def test_a_breach_sets_drift_detected_and_starts_exactly_one_job_with_the_facts_in_its_environment() -> None:
    world = stable_world()
    world.reconcile(11, measured(world, 0.31, failures=1))
    assert condition(world, "DriftDetected") != "True" and world.jobs == {}  # below the failure limit
    decided = world.reconcile(11, measured(world, 0.31, failures=2))
    assert condition(world, "DriftDetected") == "True"
    assert condition(world, "ModelDegraded") != "True"  # accuracy is a Performance metric, and healthy
    assert list(world.jobs) == [f"{NAME}-retrain-1"]
    assert {e.reason for e in decided.events} >= {"DriftDetected", "RetrainStarted"}
    job = world.job_objects[f"{NAME}-retrain-1"]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DRIFT_METRIC"] == "drift-psi" and env["DRIFT_VALUE"] == "0.31"
    assert env["MODEL_VERSION"] == "1.0.0" and env["MODEL_NAME"] == "fraud-detector"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    assert world.status["retrain"]["outcome"] == "Pending" and world.status["retrain"]["count"] == 1
    for _ in range(3):  # still breaching: one at a time
        world.reconcile(11, measured(world, 0.4, failures=3))
    assert list(world.jobs) == [f"{NAME}-retrain-1"]


def test_job_outcome_is_recorded_and_the_cooldown_holds_off_another_job() -> None:
    world = stable_world()
    world.reconcile(11, measured(world, 0.31, failures=2))
    world.jobs[f"{NAME}-retrain-1"] = "Succeeded"
    decided = world.reconcile(1)
    assert world.status["retrain"]["outcome"] == "Succeeded"
    assert [e.reason for e in decided.events] == ["RetrainSucceeded"]
    world.reconcile(11, measured(world, 0.35, failures=3))
    assert list(world.jobs) == [f"{NAME}-retrain-1"]  # inside the cooldown
    world.reconcile(3600, measured(world, 0.35, failures=4))
    assert list(world.jobs) == [f"{NAME}-retrain-2"]  # after it, one more; the old Job is cleaned up
    assert world.status["retrain"]["count"] == 2


def test_inconclusive_is_never_a_breach_nor_a_clean_bill() -> None:
    world = stable_world()
    world.reconcile(11, measured(world, 0.31, failures=2))
    assert condition(world, "DriftDetected") == "True"
    world.reconcile(11, measured(world, None))
    assert condition(world, "DriftDetected") == "True"  # unchanged
    world.reconcile(11, measured(world, 0.05))
    assert condition(world, "DriftDetected") == "False"

    fresh = stable_world()
    fresh.reconcile(11, measured(fresh, None))
    fresh.reconcile(11, measured(fresh, None))
    assert fresh.jobs == {} and condition(fresh, "DriftDetected") is None


def test_webhook_only_retraining_records_the_answer() -> None:
    monitoring = {**MONITORING, "retrain": {"webhook": {"url": "http://127.0.0.1:9/hook"}, "cooldown": "1h"}}
    world = stable_world(monitoring)
    world.reconcile(11, measured(world, 0.31, failures=2))
    assert world.status["retrain"]["webhook"] == "http://127.0.0.1:9/hook" and world.jobs == {}
    decided = world.reconcile(
        1, Inputs(webhook=WebhookOutcome(False, "webhook failed after 4 attempt(s): HTTP 500"))
    )
    assert world.status["retrain"]["outcome"] == "Failed"
    assert "HTTP 500" in world.status["retrain"]["message"]
    assert [e.reason for e in decided.events] == ["RetrainFailed"]
