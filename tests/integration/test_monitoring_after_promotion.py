"""After promotion, against the real local Prometheus: drift sets conditions and starts retraining."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from kubetest import apply, event_reasons, fraud, get, items, md_status, wait_for, wait_phase
from modeldeploy_dev.metrics import Exporter, wait_for_value
from webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.usefixtures("operator")

DRIFT = 'max(feature_psi{namespace="{{namespace}}",revision="{{revision}}"})'
JOB_TEMPLATE = {
    "spec": {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "train",
                        "image": "ghcr.io/acme/trainer:1",
                        "args": ["--output", "s3://models/fraud/"],
                    }
                ],
            }
        },
    }
}


@pytest.fixture
def exporter(cluster: Any, prometheus: str) -> Iterator[Exporter]:
    with Exporter(cluster.scrape_targets_dir) as exporter:
        yield exporter


def monitoring(**retrain: Any) -> dict[str, Any]:
    return {
        "interval": "5s",
        "failureLimit": 1,
        "metrics": [{"name": "drift-psi", "query": DRIFT, "max": 0.2}],
        "retrain": {"cooldown": "25s", **retrain},
    }


def drift_detected(cluster: Any, namespace: str) -> str | None:
    conditions = md_status(cluster, namespace, "fraud").get("conditions", [])
    return next((c["status"] for c in conditions if c["type"] == "DriftDetected"), None)


def retrain_jobs(cluster: Any, namespace: str) -> list[str]:
    return sorted(j["metadata"]["name"] for j in items(cluster, namespace, "jobs"))


def test_drift_starts_one_job_per_cooldown_and_records_its_success(
    cluster: Any, namespace: str, exporter: Exporter, prometheus: str
) -> None:
    apply(cluster, namespace, fraud("1.0.0", monitoring=monitoring(jobTemplate=JOB_TEMPLATE)))
    stable = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]
    exporter.set("feature_psi", 0.05, namespace=namespace, revision=stable)
    wait_for("healthy measurement", lambda: drift_detected(cluster, namespace) == "False", timeout=30)
    assert retrain_jobs(cluster, namespace) == []

    exporter.set("feature_psi", 0.31, namespace=namespace, revision=stable)
    wait_for_value(
        prometheus, f'feature_psi{{namespace="{namespace}",revision="{stable}"}}', lambda v: v == 0.31
    )
    wait_for("DriftDetected", lambda: drift_detected(cluster, namespace) == "True", timeout=30)
    started = time.monotonic()
    status = md_status(cluster, namespace, "fraud")
    condition = next(c for c in status["conditions"] if c["type"] == "DriftDetected")
    assert "drift-psi 0.31 > max 0.2" in condition["message"]
    wait_for("one Job", lambda: retrain_jobs(cluster, namespace) == ["fraud-retrain-1"], timeout=15)
    job = get(cluster, namespace, "job", "fraud-retrain-1")
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}  # type: ignore[index]
    assert (
        env["DRIFT_METRIC"] == "drift-psi"
        and env["DRIFT_VALUE"] == "0.31"
        and env["MODEL_REVISION"] == stable
    )
    assert job["metadata"]["ownerReferences"][0]["name"] == "fraud"  # type: ignore[index]

    # kwok runs the Job's pod to completion; the operator records the outcome.
    wait_for(
        "retrain Succeeded",
        lambda: (md_status(cluster, namespace, "fraud").get("retrain") or {}).get("outcome") == "Succeeded",
        timeout=60,
    )
    event_reasons(cluster, namespace, "DriftDetected", "RetrainStarted", "RetrainSucceeded")

    # Still drifting, inside the 25 s cooldown: no second Job.
    while time.monotonic() - started < 18:
        assert retrain_jobs(cluster, namespace) == ["fraud-retrain-1"]
        time.sleep(1)
    # After the cooldown, exactly one more.
    wait_for("second Job", lambda: retrain_jobs(cluster, namespace) == ["fraud-retrain-2"], timeout=30)
    assert md_status(cluster, namespace, "fraud")["retrain"]["count"] == 2

    exporter.set("feature_psi", 0.05, namespace=namespace, revision=stable)
    wait_for("drift cleared", lambda: drift_detected(cluster, namespace) == "False", timeout=30)


def test_webhook_gets_the_facts_and_a_failing_one_is_retried_then_recorded_failed(
    cluster: Any, namespace: str, exporter: Exporter, prometheus: str
) -> None:
    hook = WebhookReceiver([500, 500, 500])
    try:
        webhook = {"url": hook.url, "timeout": "2s", "retries": 2}
        apply(cluster, namespace, fraud("1.0.0", monitoring=monitoring(webhook=webhook)))
        stable = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]
        exporter.set("feature_psi", 0.5, namespace=namespace, revision=stable)
        wait_for(
            "retrain Failed",
            lambda: (md_status(cluster, namespace, "fraud").get("retrain") or {}).get("outcome") == "Failed",
            timeout=60,
        )
        assert len(hook.bodies) == 3  # one call and two retries
        gaps = [later - earlier for earlier, later in zip(hook.times, hook.times[1:], strict=False)]
        assert gaps[1] > gaps[0] >= 0.4  # backoff grows
        body = hook.bodies[0]
        assert (body["namespace"], body["name"], body["model"], body["version"], body["revision"]) == (
            namespace,
            "fraud",
            "fraud-detector",
            "1.0.0",
            stable,
        )
        assert (body["metric"], body["value"], body["retrain"]) == ("drift-psi", 0.5, 1)
        retrain = md_status(cluster, namespace, "fraud")["retrain"]
        assert "failed after 3 attempt(s): HTTP 500" in retrain["message"]
        event_reasons(cluster, namespace, "RetrainFailed")
        assert retrain_jobs(cluster, namespace) == []
    finally:
        hook.close()


def test_unreachable_prometheus_starts_nothing_and_leaves_the_condition_alone(
    cluster: Any, namespace: str
) -> None:
    spec = monitoring(jobTemplate=JOB_TEMPLATE)
    apply(
        cluster,
        namespace,
        fraud(
            "1.0.0",
            monitoring=spec,
            analysis={
                "prometheus": {"address": "http://127.0.0.1:9"},
                "metrics": [{"name": "unused", "query": "up", "max": 1}],
            },
        ),
    )
    wait_phase(cluster, namespace, "fraud", "Stable")
    wait_for(
        "inconclusive counted",
        lambda: (
            ((md_status(cluster, namespace, "fraud").get("monitoring") or [{}])[0].get("inconclusive", 0))
            >= 3
        ),
        timeout=40,
    )
    result = md_status(cluster, namespace, "fraud")["monitoring"][0]
    assert result["phase"] == "Inconclusive" and "cannot reach Prometheus" in result["message"]
    assert drift_detected(cluster, namespace) is None
    assert retrain_jobs(cluster, namespace) == []
