"""The two scenarios, narrated: a better model promoted, a worse one rolled back by accuracy.

With version 1.0.0 stable and the load running through the gateway:

1. version 2.0.0 (a better model) walks shadow -> canary steps -> Stable,
   each analysis comparing its misclassification rate with 1.0.0's;
2. version 3.0.0 (trained on corrupted labels; fast, and it never fails) is
   rolled back during shadow, on mirrored traffic, by the misclassification
   comparison with 2.0.0: no user ever got its answers.

While a scenario runs, one line per second shows the phase, stage, traffic
split, each metric against its bound, the answers users got by version, and
the answers the model servers counted by version (live and mirrored). At the
end of each canary step the split the servers counted during the step is kept
beside the declared weight.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import yaml

from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import MODEL_DEPLOYMENT
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.demo.load import Load
from modeldeploy_dev.demo.manifests import NAME, NAMESPACE, Timings, model_deployment, thresholds
from modeldeploy_dev.demo.servers import Servers
from modeldeploy_dev.demo.view import Scenario, StepSplit, live_line, per_second, stage_text
from modeldeploy_dev.inference import Client


def clock() -> str:
    return time.strftime("%H:%M:%S")


class Scenarios:
    def __init__(
        self,
        cluster: LocalCluster,
        api: KubeClient,
        timings: Timings,
        image: str,
        servers: Servers,
        load: Load,
        accuracies: dict[str, float],
        say: Callable[[str], None],
        timeout: float,
    ) -> None:
        self.cluster = cluster
        self.api = api
        self.timings = timings
        self.image = image
        self.servers = servers
        self.load = load
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
        self.apply(model_deployment(version, self.image, self.timings, self.accuracies.get(version)))

    def first_version(self) -> None:
        self.cluster.kubectl("create", "namespace", NAMESPACE)
        self.say(
            f"applying {NAME} 1.0.0 (an MLServer pod on the real node, an HTTPRoute on the gateway); "
            "waiting for it to turn Ready"
        )
        self.deploy("1.0.0")
        deadline = time.monotonic() + self.timeout
        while self.status().get("phase") != "Stable":
            if time.monotonic() > deadline:
                raise RuntimeError(f"1.0.0 never became Stable: {self.status()}")
            time.sleep(0.5)
        # The gateway serves a new route a moment after the operator writes it: users
        # arrive once it answers (a probe, not counted in the load's tally).
        probe = Client(self.load.address, 80, host=self.load.host, timeout=5)
        try:
            while True:
                try:
                    if probe.infer([self.load.held_out.rows[0]]).version == "1.0.0":
                        break
                except OSError:
                    probe.close()
                if time.monotonic() > deadline:
                    raise RuntimeError("the gateway never answered with 1.0.0")
                time.sleep(0.5)
        finally:
            probe.close()
        self.say(f"1.0.0 is Stable; load starts: {self.timings.rate:g} labelled rows/s through the gateway")
        self.load.start()

    def wait_for_first_answers(self) -> None:
        deadline = time.monotonic() + 60
        while self.servers.answers_by_version().get("1.0.0", 0) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answer from 1.0.0 through the gateway: {self.load.snapshot()}")
            time.sleep(0.5)
        time.sleep(self.timings.pause)

    def run(self, scenario: Scenario) -> None:
        self.say(f"--- {scenario.title}: applying version {scenario.version} ---")
        started = time.monotonic()
        scenario.started = clock()
        self.deploy(scenario.version)
        last_key: tuple[Any, ...] | None = None
        before, then = self._counts(), time.monotonic()
        step_start: tuple[int, dict[str, int], tuple[str, str]] | None = None
        deadline = started + self.timeout
        while time.monotonic() < deadline:
            time.sleep(1)
            status = self.status()
            now = time.monotonic()
            counts = self._counts()
            users, servers = (per_second(b, a, now - then) for b, a in zip(before, counts, strict=True))
            print(live_line(clock(), status, self.timings.steps, thresholds(), users, servers), flush=True)
            before, then = counts, now
            candidate = status.get("candidate") or {}
            key = (status.get("phase"), candidate.get("stage"), candidate.get("step"))
            if key != last_key:
                if step_start is not None:
                    scenario.splits.append(self._split(step_start, counts[1]))
                    step_start = None
                if candidate.get("stage") == "Canary" and candidate.get("step") is not None:
                    step = int(candidate["step"])
                    versions = (str(status["stable"]["version"]), str(candidate["version"]))
                    step_start = (self.timings.steps[step][0], counts[1], versions)
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
        """Answers users got, and answers the model servers counted, so far, by model version."""
        return dict(self.load.snapshot().answered), self.servers.answers_by_version()

    @staticmethod
    def _split(start: tuple[int, dict[str, int], tuple[str, str]], now: dict[str, int]) -> StepSplit:
        weight, before, (stable, candidate) = start
        to_stable = now.get(stable, 0) - before.get(stable, 0)
        to_candidate = now.get(candidate, 0) - before.get(candidate, 0)
        return StepSplit(weight, to_stable, to_candidate)
