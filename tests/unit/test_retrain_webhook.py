"""The retrain webhook is called exactly once per retraining, whatever the breaching metric is called.

Whether the webhook was called is a recorded fact (``status.retrain.webhookCalledAt``),
not something read back from a message: a metric named ``webhook-latency`` makes
the breach message start with "webhook", which once passed for "already called".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from planner_world import NAME, World, spec

from modeldeploy.analysis.outbound import EgressPolicy, Outbound
from modeldeploy.api import MetricResult
from modeldeploy.kube.client import Kind, KubeClient
from modeldeploy.plan.inputs import Inputs
from modeldeploy.providers import OperatorConfig
from modeldeploy.reconcile.measure import Measurer
from webhook_receiver import WebhookReceiver

JOB = {
    "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "t"}]}}}
}


class StatusPatches(KubeClient):
    """Records status patches: the Measurer counts each webhook call in status before making it."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def merge_patch(  # type: ignore[override]
        self, kind: Kind, namespace: str | None, name: str, patch: dict[str, Any], subresource: str = ""
    ) -> dict[str, Any]:
        self.patches.append(patch)
        return {}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver([])
    yield hook
    hook.close()


def breach(world: World, metric: str) -> Inputs:
    return Inputs(
        monitoring=(
            MetricResult(
                metric=metric,
                phase="Failed",
                value=0.9,
                failures=2,
                measured_at=world.now + timedelta(seconds=11),
                message=f"{metric} 0.9 > max 0.5",
            ),
        )
    )


@pytest.mark.parametrize("metric", ["webhook-latency", "p99-latency"])
def test_the_webhook_is_called_once_even_when_the_breaching_metric_is_named_webhook_something(
    receiver: WebhookReceiver, metric: str
) -> None:
    monitoring: dict[str, Any] = {
        "interval": "10s",
        "failureLimit": 2,
        "metrics": [{"name": metric, "query": "q", "max": 0.5}],
        "retrain": {"webhook": {"url": receiver.url, "retries": 0}, "jobTemplate": JOB, "cooldown": "1h"},
    }
    world = World(spec("1.0.0", monitoring=monitoring))
    world.reconcile()
    world.ready_all()
    world.settle()
    world.reconcile(11, breach(world, metric))
    assert world.status["retrain"]["outcome"] == "Pending"
    assert world.status["retrain"]["message"].startswith(metric)

    client = StatusPatches()
    measurer = Measurer(client, OperatorConfig(), Outbound(EgressPolicy.parse(["127.0.0.0/8"])), "")
    measured = measurer.inputs(world.subject(), world.now)
    assert measured.webhook is not None and measured.webhook.ok
    assert [body["metric"] for body in receiver.bodies] == [metric]
    assert client.patches == [{"status": {"retrain": {"webhookStarts": 1}}}]  # counted before the call
    world.reconcile(1, measured)
    assert world.status["retrain"]["outcome"] in ("Pending", "Running")  # the Job still trains

    for _ in range(3):
        again = measurer.inputs(world.subject(), world.now)
        assert again.webhook is None
        world.reconcile(1, again)
    assert len(receiver.bodies) == 1  # once per retraining, never again
    world.jobs[f"{NAME}-retrain-1"] = "Succeeded"
    world.reconcile(1)
    assert world.status["retrain"]["outcome"] == "Succeeded"
