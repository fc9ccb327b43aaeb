"""Helpers the reliability tests share (test_reliability*.py); their fixtures are in conftest.py.

A ``TrafficSampler`` reads every route, Service and Deployment as ONE
consistent snapshot every 100 ms; ``canary`` makes the manifests, and
``assert_promoted_cleanly`` says what a rollout that went well ends as.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from kubetest import fraud, wait_for
from modeldeploy.api import parse_spec
from modeldeploy.kube.client import ApiError, Kind, KubeClient
from modeldeploy.kube.kinds import DEPLOYMENT, HTTPROUTE, MODEL_DEPLOYMENT, SERVICE
from modeldeploy.plan.revisions import (
    LABEL_MANAGED_BY,
    LABEL_REVISION,
    MANAGED_BY,
    revision_name,
    revision_source,
)
from modeldeploy_dev.metrics import Exporter, wait_for_value

INTERVAL = 5  # seconds: the shortest analysis interval the API allows
ERROR_RATE = 'max(model_error_rate{namespace="{{namespace}}",revision="{{revision}}"})'
MANAGED = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
POD = Kind("v1", "Pod", "pods")


def canary(version: str, pause: str = "2s", analysed: bool = True, **spec: Any) -> dict[str, Any]:
    """`fraud` at a version: a two-step canary (30%, 60%) with short pauses, analysed by error rate."""
    extra: dict[str, Any] = {
        "strategy": {"canary": {"steps": [{"weight": 30, "pause": pause}, {"weight": 60, "pause": pause}]}}
    }
    if analysed:
        extra["analysis"] = {
            "interval": f"{INTERVAL}s",
            "onInconclusive": "Hold",
            "metrics": [{"name": "error-rate", "query": ERROR_RATE, "max": 0.05}],
        }
    return fraud(version, **{**extra, **spec})


def revision(doc: dict[str, Any]) -> str:
    parsed = parse_spec(doc["spec"])
    return revision_name(doc["metadata"]["name"], revision_source(parsed.model, parsed.runtime))


def apply_all(cluster: Any, docs: list[dict[str, Any]]) -> None:
    """One `kubectl apply` for many namespaced documents (each names its namespace)."""
    cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=test",
        "--force-conflicts",
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
        timeout=120,
    )


def in_namespace(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}


def reader(cluster: Any) -> KubeClient:
    """A fast, admin client for the test's own reads (kubectl costs ~0.3 s of CPU a call)."""
    return KubeClient.from_environment(str(cluster.kubeconfig))


def statuses(client: KubeClient, namespaces: set[str]) -> dict[str, dict[str, Any]]:
    """status of `fraud` in each of the namespaces (all namespaces in one list call)."""
    found = client.list_objects(MODEL_DEPLOYMENT)
    return {
        md["metadata"]["namespace"]: md.get("status") or {}
        for md in found
        if md["metadata"]["namespace"] in namespaces and md["metadata"]["name"] == "fraud"
    }


def wait_all_stable_at(
    client: KubeClient, wanted: dict[str, str], timeout: float
) -> dict[str, dict[str, Any]]:
    """Wait until `fraud` is Stable at wanted[namespace] in every namespace; return the statuses."""

    def done() -> dict[str, dict[str, Any]] | None:
        found = statuses(client, set(wanted))
        lagging = {
            ns: (s.get("phase"), (s.get("stable") or {}).get("revision"))
            for ns, s in found.items()
            if s.get("phase") != "Stable" or (s.get("stable") or {}).get("revision") != wanted[ns]
        }
        return found if len(found) == len(wanted) and not lagging else None

    return wait_for(f"{len(wanted)} ModelDeployments Stable", done, timeout=timeout, interval=0.5)


def create_namespaces(cluster: Any, count: int, prefix: str) -> list[str]:
    names = [f"{prefix}-{i:02d}-{random.randrange(16**6):06x}" for i in range(count)]
    apply_all(cluster, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names])
    client = reader(cluster)
    wait_for(
        "default ServiceAccounts",
        lambda: all(client.get(Kind("v1", "ServiceAccount", "serviceaccounts"), n, "default") for n in names),
        timeout=60,
    )
    return names


def delete_namespaces(cluster: Any, names: list[str]) -> None:
    cluster.kubectl("delete", "namespace", *names, "--wait=false", check=False)


# --- the traffic sampler -------------------------------------------------------


@dataclass
class TrafficSampler:
    """Reads routes, Services and pods as one snapshot every ``period`` seconds.

    The route list's resourceVersion is the etcd revision it was read at; the
    Services and pods are then listed at exactly that revision
    (resourceVersionMatch=Exact), so each sample is the cluster at one instant,
    with no false alarm from reading the three kinds at different moments.
    A violation is a route backend with weight > 0 whose Service selects a
    revision with no Ready pod: the pods' own Ready condition, not a count a
    controller copied from them later (the operator reads the ReplicaSet's,
    seconds before the Deployment's status has it). Errors (an API server being restarted)
    are counted, not raised.
    """

    client: KubeClient
    namespaces: set[str]
    period: float = 0.1
    samples: int = 0
    errors: int = 0
    violations: list[str] = field(default_factory=list)
    violation_times: list[float] = field(default_factory=list)
    weights_seen: set[tuple[str, str, int]] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TrafficSampler:
        self._thread = threading.Thread(target=self._run, name="traffic-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _list(self, kind: Kind, params: dict[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = self.client.request(
            "list", "GET", kind.path(), params={"labelSelector": MANAGED, **params}
        )
        return result

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample()
            except (ApiError, OSError, ValueError):
                self.errors += 1
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))

    def sample(self) -> None:
        routes = self._list(HTTPROUTE, {})
        at = {"resourceVersion": routes["metadata"]["resourceVersion"], "resourceVersionMatch": "Exact"}
        services = self._list(SERVICE, at)["items"]
        pods = self._list(POD, at)["items"]
        selects = {
            (s["metadata"]["namespace"], s["metadata"]["name"]): (s["spec"].get("selector") or {}).get(
                LABEL_REVISION
            )
            for s in services
        }
        ready: dict[tuple[str, str], int] = {}
        for pod in pods:
            revision = (pod["metadata"].get("labels") or {}).get(LABEL_REVISION)
            conditions = (pod.get("status") or {}).get("conditions") or []
            if revision and any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                key = (pod["metadata"]["namespace"], revision)
                ready[key] = ready.get(key, 0) + 1
        self.samples += 1
        for route in routes["items"]:
            namespace = route["metadata"]["namespace"]
            if namespace not in self.namespaces:
                continue
            for rule in route["spec"].get("rules", []):
                for backend in rule.get("backendRefs", []):
                    weight = backend.get("weight", 1)
                    if weight <= 0:
                        continue
                    self.weights_seen.add((namespace, backend["name"], weight))
                    selected = selects.get((namespace, backend["name"]))
                    if not ready.get((namespace, str(selected)), 0):
                        self.violation_times.append(time.time())
                        self.violations.append(
                            f"{time.strftime('%H:%M:%S')} rv {at['resourceVersion']}: {namespace} route "
                            f"sends {weight}% to Service {backend['name']} selecting {selected!r}, "
                            "which has no Ready replica"
                        )


def healthy_error_rate(exporter: Exporter, prometheus: str, revisions: dict[str, str]) -> None:
    """A passing error rate for each namespace's candidate, visible in Prometheus before we go on."""
    for namespace, candidate in revisions.items():
        exporter.set("model_error_rate", 0.001, namespace=namespace, revision=candidate)
    for namespace, candidate in revisions.items():
        series = f'model_error_rate{{namespace="{namespace}",revision="{candidate}"}}'
        wait_for_value(prometheus, series, lambda v: v == 0.001)


def assert_promoted_cleanly(
    client: KubeClient, namespace: str, old: str, new: str, status: dict[str, Any]
) -> None:
    """What a rollout from old to new ends as when nothing went wrong."""
    history = [(h["revision"], h["outcome"]) for h in status["history"]]
    assert history == [(old, "Promoted"), (new, "Promoted")], (namespace, status["history"])
    assert status["traffic"] == [{"revision": new, "role": "stable", "weight": 100}], (namespace, status)
    assert not status.get("candidate"), (namespace, status["candidate"])
    route = client.get(HTTPROUTE, namespace, "fraud")
    assert route is not None
    assert [(b["name"], b.get("weight", 1)) for b in route["spec"]["rules"][0]["backendRefs"]] == [
        ("fraud", 100)
    ], (namespace, route["spec"])
    stable = client.get(SERVICE, namespace, "fraud")
    assert stable is not None and stable["spec"]["selector"][LABEL_REVISION] == new
    wait_for(
        f"{namespace}: {old} scaled to zero, {new} at full size",
        lambda: (
            {
                d["metadata"]["name"]: d["spec"]["replicas"]
                for d in client.list_objects(DEPLOYMENT, namespace, MANAGED)
            }
            == {old: 0, new: 2}
        ),
        timeout=90,  # the default scaleDownDelay (30s) keeps the old revision up first
    )
