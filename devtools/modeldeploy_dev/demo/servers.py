"""The demo's model servers, as their own metrics count them, and Prometheus pointed at them.

Every second ``Servers`` lists the model pods in the demo's namespace and reads
each one's MLServer metrics on its pod IP (the real node's bridge): answers
given (live and mirrored alike: a server cannot tell them apart), failures,
labelled answers and right ones. A pod's last counts are kept after it is
gone, so a revision scaled away still counts in the totals.

It also writes those pods into the local Prometheus' file discovery, labelled
with their namespace and revision, the labels the analysis queries select on.
(Written before the local Prometheus discovered pods itself; the analysis
queries take ratios of sums, which a pod scraped twice leaves unchanged.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeldeploy.kube.client import Kind, KubeClient
from modeldeploy_dev.inference import METRICS_PORT, ServerCounters, server_counters

POD = Kind("v1", "Pod", "pods")
REVISION_LABEL = "modeldeploy.io/revision"


@dataclass(frozen=True)
class ModelPod:
    uid: str
    name: str
    ip: str
    revision: str
    version: str


def model_pods(pods: list[Mapping[str, Any]]) -> list[ModelPod]:
    """Running model pods with an IP, each with its revision and the version it serves."""
    found: list[ModelPod] = []
    for pod in pods:
        status = pod.get("status") or {}
        ip = status.get("podIP")
        if not ip or status.get("phase") != "Running":
            continue
        env = {e.get("name"): e.get("value") for c in pod["spec"]["containers"] for e in c.get("env") or []}
        found.append(
            ModelPod(
                uid=pod["metadata"]["uid"],
                name=pod["metadata"]["name"],
                ip=ip,
                revision=pod["metadata"]["labels"][REVISION_LABEL],
                version=str(env.get("MODEL_VERSION", "?")),
            )
        )
    return found


def scrape_targets(namespace: str, pods: list[ModelPod]) -> list[dict[str, Any]]:
    return [
        {
            "targets": [f"{pod.ip}:{METRICS_PORT}"],
            "labels": {"namespace": namespace, "revision": pod.revision, "pod": pod.name},
        }
        for pod in pods
    ]


def add(a: ServerCounters, b: ServerCounters) -> ServerCounters:
    return ServerCounters(
        a.success + b.success, a.failure + b.failure, a.labelled + b.labelled, a.correct + b.correct
    )


class Servers:
    def __init__(self, api: KubeClient, namespace: str, targets_dir: Path) -> None:
        self.api = api
        self.namespace = namespace
        self.target_file = targets_dir / f"model-pods-{namespace}.json"
        self._last: dict[str, tuple[ModelPod, ServerCounters]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="servers", daemon=True)

    def start(self) -> None:
        self.poll()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.target_file.unlink(missing_ok=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.poll()
            except Exception as error:  # one missed poll is shown, the next one retries
                print(f"[servers] poll failed: {error}", flush=True)

    def poll(self) -> None:
        pods = model_pods(self.api.list_objects(POD, self.namespace, REVISION_LABEL))
        staging = self.target_file.with_suffix(".partial")
        staging.write_text(json.dumps(scrape_targets(self.namespace, pods)))
        staging.rename(self.target_file)
        for pod in pods:
            try:
                counters = server_counters(pod.ip, timeout=2)
            except (OSError, RuntimeError):
                continue  # starting or stopping: its last counts stand
            with self._lock:
                self._last[pod.uid] = (pod, counters)

    def by_version(self) -> dict[str, ServerCounters]:
        totals: dict[str, ServerCounters] = {}
        with self._lock:
            for pod, counters in self._last.values():
                totals[pod.version] = add(totals.get(pod.version, ServerCounters()), counters)
        return totals

    def answers_by_version(self) -> dict[str, int]:
        return {version: int(c.success) for version, c in self.by_version().items()}
