"""The two scenarios, narrated: a better model promoted, a worse one rolled back by accuracy.

The ModelDeployment follows ``digits-classifier@challenger`` in the MLflow
registry and is applied once. With version 1 stable and the load running through
the gateway, each scenario moves the alias, as a team would, and nothing else:

1. version 2 (a better model) walks shadow -> canary steps -> Stable,
   each analysis comparing its misclassification rate with version 1's;
   modeldeploy then moves ``@production`` to it and tags it with the outcome;
2. version 3 (trained on corrupted labels; fast, and it never fails) is
   rolled back during shadow, on mirrored traffic, by the misclassification
   comparison with version 2: no user ever got its answers, ``@production``
   stays on 2, and version 3 is tagged ``RolledBack`` with the reason.

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
from modeldeploy_dev.demo.models import DESCRIPTIONS
from modeldeploy_dev.demo.registry import ALIAS, MODEL, PROMOTION_ALIAS, aliases, move_alias, outcome_tags
from modeldeploy_dev.demo.servers import Servers
from modeldeploy_dev.demo.view import Scenario, StepSplit, live_line, per_second, stage_text
from modeldeploy_dev.inference import Client
from modeldeploy_dev.model_registry import MlflowServer


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
        registry: MlflowServer,
        versions: dict[str, str],
        say: Callable[[str], None],
        timeout: float,
    ) -> None:
        """``versions``: the registry's version of each recipe (1.0.0 -> 1, ...)."""
        self.cluster = cluster
        self.api = api
        self.timings = timings
        self.image = image
        self.servers = servers
        self.load = load
        self.registry = registry
        self.first = versions["1.0.0"]
        self.descriptions = {versions[recipe]: text for recipe, text in DESCRIPTIONS.items()}
        self.say = say
        self.timeout = timeout
        self.scenarios = [
            Scenario("a better model", versions["2.0.0"], "Promoted"),
            Scenario(
                "a model trained on corrupted labels",
                versions["3.0.0"],
                "RolledBack",
                "misclassification-rate",
            ),
        ]

    def apply(self, document: dict[str, Any]) -> None:
        self.cluster.kubectl(
            "apply", "--server-side", "--field-manager=demo", "-f", "-", input=yaml.safe_dump(document)
        )

    def status(self) -> dict[str, Any]:
        found = self.api.get(MODEL_DEPLOYMENT, NAMESPACE, NAME) or {}
        return dict(found.get("status") or {})

    def move_alias(self, version: str) -> None:
        self.say(
            f"MLflow: {MODEL}@{ALIAS} -> version {version} ({self.descriptions[version]}), "
            "moved with MlflowClient.set_registered_model_alias; the ModelDeployment is not edited"
        )
        move_alias(self.registry, version)

    def first_version(self) -> None:
        self.cluster.kubectl("create", "namespace", NAMESPACE)
        self.move_alias(self.first)
        self.say(
            f"applying {NAME}, which follows {MODEL}@{ALIAS} (an MLServer pod on the real node that fetches "
            "its model from MLflow, an HTTPRoute on the gateway); waiting for it to turn Ready"
        )
        self.apply(model_deployment(self.image, self.timings, self.registry.artifacts_url))
        deadline = time.monotonic() + self.timeout
        while self.status().get("phase") != "Stable":
            if time.monotonic() > deadline:
                raise RuntimeError(f"version {self.first} never became Stable: {self.status()}")
            time.sleep(0.5)
        # The gateway serves a new route a moment after the operator writes it: users
        # arrive once it answers (a probe, not counted in the load's tally).
        probe = Client(self.load.address, 80, host=self.load.host, timeout=5)
        try:
            while True:
                try:
                    if probe.infer([self.load.held_out.rows[0]]).version == self.first:
                        break
                except OSError:
                    probe.close()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the gateway never answered with version {self.first}")
                time.sleep(0.5)
        finally:
            probe.close()
        registry = (self.status().get("registry") or {}).get("uri", "?")
        self.say(
            f"version {self.first} is Stable, served from {registry}; "
            f"load starts: {self.timings.rate:g} labelled rows/s through the gateway"
        )
        self.load.start()

    def wait_for_first_answers(self) -> None:
        deadline = time.monotonic() + 60
        while self.servers.answers_by_version().get(self.first, 0) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answer from {self.first} through the gateway: {self.load.snapshot()}")
            time.sleep(0.5)
        time.sleep(self.timings.pause)

    def run(self, scenario: Scenario) -> None:
        self.say(f"--- {scenario.title}: version {scenario.version} ---")
        started = time.monotonic()
        scenario.started = clock()
        self.move_alias(scenario.version)
        scenario.timeline.append(f"{clock()} MLflow: @{ALIAS} moved to version {scenario.version}")
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
        scenario.registry = self._registry_lines(scenario.version)
        self.say(f"{scenario.title}: {scenario.verdict()}")
        for line in scenario.registry:
            self.say(line)
        time.sleep(self.timings.pause)

    def _registry_lines(self, version: str) -> list[str]:
        """What MLflow holds after the outcome: its aliases, and the tags modeldeploy wrote on the
        version (written after the outcome, so waited for a few seconds). modeldeploy tags the
        version first and moves the promotion alias after, so a promoted version's wait ends only
        once the alias names it too."""
        deadline = time.monotonic() + 30

        def recorded() -> bool:
            outcome = outcome_tags(self.registry, version).get("modeldeploy.outcome")
            if outcome is None:
                return False
            return outcome != "Promoted" or aliases(self.registry).get(PROMOTION_ALIAS) == version

        while not recorded() and time.monotonic() < deadline:
            time.sleep(1)
        tags = outcome_tags(self.registry, version)
        moved = ", ".join(f"@{alias} -> {v}" for alias, v in sorted(aliases(self.registry).items()))
        written = ", ".join(
            f"{key.removeprefix('modeldeploy.')}={tags[key]}"
            for key in ("modeldeploy.outcome", "modeldeploy.reason", "modeldeploy.revision")
            if key in tags
        )
        return [
            f"MLflow now: {moved}",
            f"MLflow version {version} tagged by modeldeploy: {written or 'nothing'}",
        ]

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
