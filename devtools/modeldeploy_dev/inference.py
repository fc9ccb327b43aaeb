"""V2 inference requests to the real node's model servers, and their answers counted there.

Every address dialled here lies inside the real node's bridge subnet or the
cluster's Service range (the network rule); anything else is refused before a
connection is made. Requests through the gateway carry the route's hostname in
their Host header.

The count of answers is MLServer's own: ``model_infer_request_success_total``
on each model pod's metrics port, summed over a revision's pods.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modeldeploy_dev.node import SUBNET

SERVICE_RANGE = ipaddress.ip_network("10.96.0.0/16")
METRICS_PORT = 8082
MODEL = "digits"
INFER_PATH = f"/v2/models/{MODEL}/infer"
READY_PATH = f"/v2/models/{MODEL}/ready"
"""The model pods' readiness probe: 200 once MLServer has loaded the model. Its server-wide
/v2/health/ready answers 200 before any model is loaded."""
SUCCESS_METRIC = "model_infer_request_success_total"
# The model server image's runtime (images.DIGITS_RUNTIME_PY): labelled answers, and right ones.
LABELLED_METRIC = "digits_labelled_predictions_total"
CORRECT_METRIC = "digits_correct_predictions_total"


def check_address(host: str) -> None:
    address = ipaddress.ip_address(host)
    if address not in SUBNET and address not in SERVICE_RANGE:
        raise ValueError(
            f"{host} is outside the real node's subnet {SUBNET} and Service range {SERVICE_RANGE}"
        )


def infer_body(rows: Sequence[Sequence[float]], labels: Sequence[int] | None = None) -> dict[str, Any]:
    """A V2 inference request; with labels, the rows' true classes ride in its parameters."""
    data = [float(v) for row in rows for v in row]
    width = len(rows[0]) if rows else 0
    body: dict[str, Any] = {
        "inputs": [{"name": "pixels", "shape": [len(rows), width], "datatype": "FP64", "data": data}]
    }
    if labels is not None:
        body["parameters"] = {"labels": [int(label) for label in labels]}
    return body


@dataclass(frozen=True)
class Answer:
    status: int
    version: str | None
    predictions: list[int]
    body: bytes


class Client:
    """Keep-alive HTTP/1.1 to one address (a pod IP or a ClusterIP), with an optional Host header."""

    def __init__(self, address: str, port: int = 80, host: str | None = None, timeout: float = 10) -> None:
        check_address(address)
        self.address, self.port, self.host, self.timeout = address, port, host, timeout
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.address, self.port, timeout=self.timeout)
        return self._connection

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.host:
            headers["Host"] = self.host
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed between requests: only a
                # request never answered is retried, once, on a new connection.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def infer(self, rows: Sequence[Sequence[float]], labels: Sequence[int] | None = None) -> Answer:
        status, body = self.request("POST", INFER_PATH, json.dumps(infer_body(rows, labels)).encode())
        if status != 200:
            return Answer(status, None, [], body)
        answer = json.loads(body)
        return Answer(
            status, answer.get("model_version"), [int(p) for p in answer["outputs"][0]["data"]], body
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass(frozen=True)
class ServerCounters:
    """What one model server counted: answers, failures, and labelled answers right."""

    success: float = 0.0
    failure: float = 0.0
    labelled: float = 0.0
    correct: float = 0.0


COUNTER_LINES = {
    f'{SUCCESS_METRIC}{{model="{MODEL}",': "success",
    f'model_infer_request_failure_total{{model="{MODEL}",': "failure",
    f'{LABELLED_METRIC}{{model="{MODEL}",': "labelled",
    f'{CORRECT_METRIC}{{model="{MODEL}",': "correct",
}


def parse_counters(text: str) -> ServerCounters:
    """Sum each counter over its label sets (MLServer labels requests by the path's version)."""
    sums = dict.fromkeys(COUNTER_LINES.values(), 0.0)
    for line in text.splitlines():
        for prefix, field in COUNTER_LINES.items():
            if line.startswith(prefix):
                sums[field] += float(line.rsplit(" ", 1)[1])
    return ServerCounters(**sums)


def server_counters(pod_ip: str, timeout: float = 5) -> ServerCounters:
    client = Client(pod_ip, METRICS_PORT, timeout=timeout)
    try:
        status, body = client.request("GET", "/metrics")
    finally:
        client.close()
    if status != 200:
        raise RuntimeError(f"metrics of model pod {pod_ip}: HTTP {status}")
    return parse_counters(body.decode())


def served_by_pod(pod_ips: Sequence[str]) -> dict[str, float]:
    """Answers each model pod has given, by MLServer's own success counter (all versions)."""
    return {ip: server_counters(ip).success for ip in pod_ips}


def revision_pod_ips(kubectl: Callable[..., Any], namespace: str, revision: str) -> list[str]:
    pods = json.loads(
        kubectl(
            "-n", namespace, "get", "pods", "-l", f"modeldeploy.io/revision={revision}", "-o", "json"
        ).stdout
    )["items"]
    return [
        pod["status"]["podIP"]
        for pod in pods
        if pod.get("status", {}).get("podIP") and pod["metadata"].get("deletionTimestamp") is None
    ]


def served_by_revision(
    kubectl: Callable[..., Any], namespace: str, revisions: Sequence[str]
) -> dict[str, float]:
    """Answers given by each revision's running pods, as counted by the model servers."""
    return {
        revision: sum(served_by_pod(revision_pod_ips(kubectl, namespace, revision)).values())
        for revision in revisions
    }
