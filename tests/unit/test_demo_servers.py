"""The demo's view of its model servers: which pods count, and what their MLServer metrics say."""

from __future__ import annotations

from typing import Any

import pytest

from modeldeploy_dev.demo.servers import model_pods, scrape_targets
from modeldeploy_dev.inference import ServerCounters, infer_body, parse_counters

pytestmark = pytest.mark.unit

METRICS = """\
# HELP model_infer_request_success_total Model infer request success count
# TYPE model_infer_request_success_total counter
model_infer_request_success_total{model="digits",version="None"} 7.0
model_infer_request_success_total{model="digits",version="2.0.0"} 3.0
model_infer_request_success_created{model="digits",version="None"} 1.7e+09
model_infer_request_failure_total{model="digits",version="None"} 1.0
digits_labelled_predictions_total{model="digits",version="2.0.0"} 9.0
digits_labelled_predictions_created{model="digits",version="2.0.0"} 1.7e+09
digits_correct_predictions_total{model="digits",version="2.0.0"} 8.0
"""


def pod(name: str, phase: str = "Running", ip: str | None = "10.250.0.9") -> dict[str, Any]:
    return {
        "metadata": {"uid": f"uid-{name}", "name": name, "labels": {"modeldeploy.io/revision": "digits-2"}},
        "spec": {"containers": [{"env": [{"name": "MODEL_VERSION", "value": "2.0.0"}]}]},
        "status": {"phase": phase, **({"podIP": ip} if ip else {})},
    }


def test_counters_sum_every_label_set_and_ignore_created_lines() -> None:
    assert parse_counters(METRICS) == ServerCounters(success=10.0, failure=1.0, labelled=9.0, correct=8.0)


def test_only_running_pods_with_an_ip_are_read_and_scraped() -> None:
    pods = model_pods([pod("a"), pod("b", phase="Pending"), pod("c", ip=None)])
    assert [(p.name, p.revision, p.version, p.ip) for p in pods] == [("a", "digits-2", "2.0.0", "10.250.0.9")]
    assert scrape_targets("demo", pods) == [
        {"targets": ["10.250.0.9:8082"], "labels": {"namespace": "demo", "revision": "digits-2", "pod": "a"}}
    ]


def test_labels_ride_in_the_request_parameters_only_when_given() -> None:
    assert "parameters" not in infer_body([[0.0, 1.0]])
    body = infer_body([[0.0, 1.0]], [3])
    assert body["parameters"] == {"labels": [3]}
    assert body["inputs"][0]["shape"] == [1, 2]
