"""The two scenarios, narrated: a better model promoted, a worse one rolled back by accuracy.

With version 1.0.0 stable and the load running through the proxy:

1. version 2.0.0 (a better model) walks warm-up -> shadow -> canary steps ->
   Stable, each analysis comparing its misclassification rate with 1.0.0's;
2. version 3.0.0 (trained on corrupted labels) passes warm-up (it is fast and
   never fails) and is rolled back during shadow, on mirrored traffic, by the
   misclassification comparison with 2.0.0: no user ever got its answers.

While a scenario runs, one line per second shows the phase, stage, traffic
split, each metric against its bound, and who answered live requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import yaml

from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import MODEL_DEPLOYMENT
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.demo.fleet import Fleet
from modeldeploy_dev.demo.load import Load
from modeldeploy_dev.demo.manifests import (
    NAME,
    NAMESPACE,
    Timings,
    model_deployment,
    thresholds,
    warmup_configmap,
)
from modeldeploy_dev.demo.models import HeldOut
from modeldeploy_dev.demo.proxy import Proxy
from modeldeploy_dev.demo.view import Scenario, live_line, per_second, stage_text
from modeldeploy_dev.metrics import wait_for_value


def clock() -> str:
    return time.strftime("%H:%M:%S")


class Scenarios:
    def __init__(
        self,
        cluster: LocalCluster,
        api: KubeClient,
        timings: Timings,
        proxy: Proxy,
        fleet: Fleet,
        held_out: HeldOut,
        accuracies: dict[str, float],
        say: Callable[[str], None],
        timeout: float,
    ) -> None:
        self.cluster = cluster
        self.api = api
        self.timings = timings
        self.proxy = proxy
        self.fleet = fleet
        self.held_out = held_out
        self.accuracies = accuracies
        self.say = say
        self.timeout = timeout
        self.scenarios = [
            Scenario("a better model", "2.0.0", "Promoted"),
            Scenario("a model trained on corrupted labels", "3.0.0", "RolledBack", "misclassification-rate"),
        ]

    def apply(self, document: dict[str, Any]) -> None:
        self.cluster.kubectl(
            "apply", "--server-side", "--field-manager=demo", "-f", "-", input=yaml.safe_dump(document)
        )

    def status(self) -> dict[str, Any]:
        found = self.api.get(MODEL_DEPLOYMENT, NAMESPACE, NAME) or {}
        return dict(found.get("status") or {})

    def deploy(self, version: str) -> None:
        self.apply(model_deployment(version, self.timings, self.accuracies.get(version)))

    def first_version(self, load: Load) -> None:
        self.cluster.kubectl("create", "namespace", NAMESPACE)
        self.apply(warmup_configmap(self.held_out))
        self.say(
            f"applying {NAME} 1.0.0 (2 replicas, Gateway API route); its server starts, its pods turn Ready"
        )
        self.deploy("1.0.0")
        deadline = time.monotonic() + self.timeout
        while self.status().get("phase") != "Stable":
            if time.monotonic() > deadline:
                raise RuntimeError(f"1.0.0 never became Stable: {self.status()}")
            time.sleep(0.5)
        self.say(
            f"1.0.0 is Stable; load starts: {self.timings.rate:g} labelled held-out rows/s through the proxy"
        )
        load.start()
        wait_for_value(
            self.cluster.prometheus_url,
            f'sum(model_labelled_predictions_total{{namespace="{NAMESPACE}"}})',
            lambda v: v > 0,
            timeout=60,
        )
        time.sleep(self.timings.pause)

    def run(self, scenario: Scenario) -> None:
        self.say(f"--- {scenario.title}: applying version {scenario.version} ---")
        started = time.monotonic()
        scenario.started = clock()
        self.deploy(scenario.version)
        last_key: tuple[Any, ...] | None = None
        before, then = self._counts(), time.monotonic()
        deadline = started + self.timeout
        while time.monotonic() < deadline:
            time.sleep(1)
            status = self.status()
            now = time.monotonic()
            counts = self._counts()
            served, mirrored = (per_second(b, a, now - then) for b, a in zip(before, counts, strict=True))
            print(live_line(clock(), status, self.timings.steps, thresholds(), served, mirrored), flush=True)
            before, then = counts, now
            candidate = status.get("candidate") or {}
            key = (status.get("phase"), candidate.get("stage"), candidate.get("step"))
            if key != last_key:
                last_key = key
                scenario.timeline.append(
                    f"{clock()} {status.get('phase')}, {stage_text(status, self.timings.steps)}: "
                    f"{status.get('message', '')}"
                )
            entry = self._history_entry(status, scenario.version)
            if entry is not None and not candidate:
                scenario.outcome = str(entry.get("outcome"))
                scenario.reason = str(entry.get("reason", ""))
                scenario.message = str(entry.get("message", ""))
                scenario.at = str(entry.get("at", ""))
                break
        scenario.seconds = time.monotonic() - started
        self.say(f"{scenario.title}: {scenario.verdict()}")
        time.sleep(self.timings.pause)

    @staticmethod
    def _history_entry(status: dict[str, Any], version: str) -> dict[str, Any] | None:
        for entry in reversed(status.get("history") or []):
            if entry.get("version") == version and entry.get("outcome") in ("Promoted", "RolledBack"):
                return dict(entry)
        return None

    def _counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Live answers and mirrored copies so far, by model version."""
        served, mirrored = self.proxy.counts()
        return self._by_version(served), self._by_version(mirrored)

    def _by_version(self, counts: dict[str, int]) -> dict[str, int]:
        by_version: dict[str, int] = {}
        for revision, count in counts.items():
            version = self.fleet.version_of(revision) or revision
            by_version[version] = by_version.get(version, 0) + count
        return by_version
