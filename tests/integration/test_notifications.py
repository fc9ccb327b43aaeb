"""Notifications for real: every event, through Apprise to an SMTP server and a JSON webhook, and as
CloudEvents to a sink, exactly once each, across a restart of the operator.

The operator runs as its own process with an admin config naming two targets
(``mail``: ``mailto://`` to an aiosmtpd server; ``hook``: ``json://`` to an
HTTP receiver) and a CloudEvents sink, all on 127.0.0.1. One ModelDeployment
subscribes both targets to every event and is driven through all of them with
kwok nodes and the local Prometheus.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetest import apply, condition, fraud, get, items, md_status, patch_action, wait_for, wait_phase
from modeldeploy.api import NotificationEvent, parse_spec
from modeldeploy.plan.revisions import revision_name, revision_source
from modeldeploy_dev.metrics import Exporter, wait_for_value
from modeldeploy_dev.operator import OperatorProcess
from notify_receivers import CloudEventSink, JsonHook, Mailbox

ERROR_RATE = 'max(model_error_rate{namespace="{{namespace}}",revision="{{revision}}"})'
DRIFT = 'max(feature_psi{namespace="{{namespace}}",revision="{{revision}}"})'
ACCURACY = 'max(model_accuracy{namespace="{{namespace}}",revision="{{revision}}"})'
EVERY_EVENT = [e.value for e in NotificationEvent]
EXPECTED = {
    "RolloutStarted": 3,  # 1.0.0, 2.0.0, 3.0.0
    "Promoted": 1,  # 1.0.0
    "DriftDetected": 1,
    "ModelDegraded": 1,
    "RetrainStarted": 1,
    "RetrainFinished": 1,
    "FallbackActivated": 1,
    "FallbackRecovered": 1,
    "StageEntered": 2,  # 2.0.0's and 3.0.0's canary step
    "AnalysisInconclusive": 1,  # 2.0.0 without data
    "RolledBack": 1,  # 2.0.0 over its error rate
    "Aborted": 1,  # 3.0.0 by request
}
JOB = {
    "spec": {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "train", "image": "ghcr.io/acme/trainer:1"}],
            }
        },
    }
}


@pytest.fixture
def receivers() -> Iterator[tuple[Mailbox, JsonHook, CloudEventSink]]:
    mailbox, hook, sink = Mailbox(), JsonHook(), CloudEventSink()
    try:
        yield mailbox, hook, sink
    finally:
        mailbox.close()
        hook.close()
        sink.close()


def spec(version: str) -> dict[str, Any]:
    return fraud(
        version,
        strategy={"canary": {"steps": [{"weight": 20}]}},  # no pause: waits for promote
        analysis={
            "interval": "5s",
            "failureLimit": 1,
            "metrics": [{"name": "error-rate", "query": ERROR_RATE, "max": 0.05}],
        },
        fallback={
            "mode": "Response",
            "response": {"status": 200, "body": '{"fallback": true}'},
            "trigger": {"interval": "5s", "recoverAfter": 2},
        },
        monitoring={
            "interval": "5s",
            "failureLimit": 1,
            "metrics": [
                {"name": "drift-psi", "kind": "Drift", "query": DRIFT, "max": 0.2},
                {"name": "accuracy", "kind": "Performance", "query": ACCURACY, "min": 0.8},
            ],
            "retrain": {"jobTemplate": JOB, "cooldown": "1h"},
        },
        notifications=[{"events": EVERY_EVENT, "target": "mail"}, {"events": EVERY_EVENT, "target": "hook"}],
    )


def revision(doc: dict[str, Any]) -> str:
    parsed = parse_spec(doc["spec"])
    return revision_name(doc["metadata"]["name"], revision_source(parsed.model, parsed.runtime))


def events_of(mailbox: Mailbox, hook: JsonHook, sink: CloudEventSink) -> dict[str, Counter[str]]:
    """Per receiver, how many notices of each event arrived (titles start ``[modeldeploy] <Event>:``)."""

    def event(title: str) -> str:
        return title.removeprefix("[modeldeploy] ").split(":", 1)[0]

    by_type = {e.cloud_event_type: e.value for e in NotificationEvent}
    return {
        "mail": Counter(event(s) for s in mailbox.subjects()),
        "hook": Counter(event(t) for t in hook.titles()),
        "sink": Counter(by_type[e["type"]] for e in sink.received() if e["subject"].endswith("/fraud")),
    }


def arrived(
    receivers: tuple[Mailbox, JsonHook, CloudEventSink], event: str, count: int = 1
) -> Callable[[], bool]:
    return lambda: all(c[event] >= count for c in events_of(*receivers).values())


@pytest.mark.timeout(600)  # drives one model through all twelve events, with a restart
def test_every_event_reaches_mail_webhook_and_sink_exactly_once_across_a_restart(
    cluster: Any,
    namespace: str,
    exporter: Exporter,
    prometheus: str,
    receivers: tuple[Mailbox, JsonHook, CloudEventSink],
    own_operators: Callable[..., OperatorProcess],
    tmp_path: Path,
) -> None:
    mailbox, hook, sink = receivers
    config = tmp_path / "operator.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "notificationTargets": [
                    {"name": "mail", "urls": [mailbox.apprise_url]},
                    {"name": "hook", "urls": [hook.apprise_url], "ratePerMinute": 600, "burst": 50},
                ],
                "cloudEvents": {"sink": sink.url, "mode": "binary"},
            }
        )
    )
    operator = own_operators("--config", str(config))

    # 1.0.0: the first revision starts and is promoted.
    apply(cluster, namespace, spec("1.0.0"))
    stable = wait_phase(cluster, namespace, "fraud", "Stable", timeout=90)["stable"]["revision"]
    status = md_status(cluster, namespace, "fraud")
    assert condition(status, "NotificationsRefused")["status"] == "False"  # type: ignore[index]
    # A target the admin does not offer is refused by a condition; the model is served all the same.
    other = fraud("1.0.0", notifications=[{"events": ["Promoted"], "target": "nobody"}])
    other["metadata"]["name"] = "iris"
    apply(cluster, namespace, other)
    refused = condition(wait_phase(cluster, namespace, "iris", "Stable", timeout=90), "NotificationsRefused")
    assert refused is not None and refused["status"] == "True"
    assert (
        f"target 'nobody' does not exist or is not offered to namespace '{namespace}'" in refused["message"]
    )
    exporter.set("feature_psi", 0.05, namespace=namespace, revision=stable)
    exporter.set("model_accuracy", 0.95, namespace=namespace, revision=stable)
    wait_for("Promoted everywhere", arrived(receivers, "Promoted"), timeout=60)

    # Drift starts a retraining Job, which kwok runs to completion; accuracy falls.
    exporter.set("feature_psi", 0.4, namespace=namespace, revision=stable)
    wait_for("RetrainFinished everywhere", arrived(receivers, "RetrainFinished"), timeout=120)
    exporter.set("model_accuracy", 0.5, namespace=namespace, revision=stable)
    wait_for("ModelDegraded everywhere", arrived(receivers, "ModelDegraded"), timeout=60)
    exporter.set("feature_psi", 0.05, namespace=namespace, revision=stable)
    exporter.set("model_accuracy", 0.95, namespace=namespace, revision=stable)
    wait_for(
        "monitoring healthy",
        lambda: all(
            (condition(md_status(cluster, namespace, "fraud"), kind) or {}).get("status") == "False"
            for kind in ("DriftDetected", "ModelDegraded")
        ),
        timeout=60,
    )

    # A restarted operator plans again from status: nothing is sent twice.
    operator.kill()
    before = events_of(*receivers)
    operator = own_operators("--config", str(config))
    time.sleep(15)  # three monitoring intervals and a resync's worth of replanning
    assert events_of(*receivers) == before

    # Every stable pod fails readiness: the fallback takes the traffic, then gives it back.
    for pod in items(cluster, namespace, "pods", f"modeldeploy.io/revision={stable}"):
        cluster.kubectl(
            "-n", namespace, "annotate", "pod", pod["metadata"]["name"], "kwok.modeldeploy.io/unready=true"
        )
    wait_for("FallbackActivated everywhere", arrived(receivers, "FallbackActivated"), timeout=60)
    for pod in items(cluster, namespace, "pods", f"modeldeploy.io/revision={stable}"):
        cluster.kubectl(
            "-n", namespace, "annotate", "pod", pod["metadata"]["name"], "kwok.modeldeploy.io/unready-"
        )
    wait_for("FallbackRecovered everywhere", arrived(receivers, "FallbackRecovered"), timeout=60)
    wait_phase(cluster, namespace, "fraud", "Stable", timeout=60)

    # 2.0.0: its canary step holds without data, then its error rate rolls it back.
    v2 = spec("2.0.0")
    apply(cluster, namespace, v2)
    wait_for("AnalysisInconclusive everywhere", arrived(receivers, "AnalysisInconclusive"), timeout=90)
    time.sleep(12)  # the hold goes on for more than two analysis intervals: still one notice each
    assert [c["AnalysisInconclusive"] for c in events_of(*receivers).values()] == [1, 1, 1]
    exporter.set("model_error_rate", 0.3, namespace=namespace, revision=revision(v2))
    wait_for("RolledBack everywhere", arrived(receivers, "RolledBack"), timeout=90)

    # 3.0.0: healthy, waiting for promote at its canary step; aborted by request.
    v3 = spec("3.0.0")
    exporter.set("model_error_rate", 0.001, namespace=namespace, revision=revision(v3))
    wait_for_value(
        prometheus,
        f'model_error_rate{{namespace="{namespace}",revision="{revision(v3)}"}}',
        lambda v: v == 0.001,
    )
    apply(cluster, namespace, v3)
    wait_for("3.0.0 at its step", arrived(receivers, "StageEntered", 2), timeout=90)
    patch_action(cluster, namespace, {"type": "Abort"})
    wait_for("Aborted everywhere", arrived(receivers, "Aborted"), timeout=60)

    time.sleep(10)  # anything sent twice would have arrived by now
    received = events_of(*receivers)
    assert received == {"mail": Counter(EXPECTED), "hook": Counter(EXPECTED), "sink": Counter(EXPECTED)}
    ids = [e["id"] for e in sink.received()]
    assert len(ids) == len(set(ids))
    # The sink takes every event of the namespaces it serves, subscribed or not (iris subscribed none).
    iris = Counter(e["type"] for e in sink.received() if e["subject"] == f"{namespace}/iris")
    assert iris == {"io.modeldeploy.rollout.started": 1, "io.modeldeploy.rollout.promoted": 1}

    # What a person reads: the model, both versions, the stage, the metric, value, threshold, the command.
    rolled_back = next(m for m in mailbox.messages if "RolledBack" in str(m["Subject"]))
    text = mailbox.text(rolled_back)
    assert f"ModelDeployment: {namespace}/fraud" in text and "Model: fraud-detector" in text
    assert "Version: 2.0.0" in text and "Stable before: 1.0.0" in text
    assert "Stage: canary step 1/1 at 20%" in text
    assert "Metric: error-rate = 0.3 (threshold: max 0.05)" in text
    assert f"kubectl modeldeploy retry fraud -n {namespace}" in text
    drift = next(b for b in hook.bodies if b["title"].startswith("[modeldeploy] DriftDetected"))
    assert "Metric: drift-psi = 0.4 (threshold: max 0.2)" in drift["message"] and drift["type"] == "warning"
    event = next(e for e in sink.received() if e["type"] == "io.modeldeploy.rollout.rolled_back")
    assert event["subject"] == f"{namespace}/fraud" and event["source"] == "/modeldeploy/operator"
    assert (event.data["version"], event.data["stableVersion"], event.data["metric"]) == (
        "2.0.0",
        "1.0.0",
        "error-rate",
    )
    assert (event.data["value"], event.data["threshold"]) == (0.3, "max 0.05")
    assert get(cluster, namespace, "modeldeployment", "fraud") is not None
