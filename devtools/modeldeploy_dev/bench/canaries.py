"""Twenty canaries at once: how long each step takes beyond its pause, how fast a breach rolls back,
and how many queries the analysis sends to Prometheus.

Each canary has steps of 20% and 50% (5 s pauses) and 80% (held), an
error-rate metric every 5 s read from a real Prometheus scraping an exporter we
control. Routes are sampled every 100 ms with one LIST call.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeldeploy.api import parse_spec
from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import HTTPROUTE, MODEL_DEPLOYMENT
from modeldeploy.plan.revisions import revision_name, revision_source
from modeldeploy_dev.bench.convergence import create_namespace, wait
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.metrics import Exporter, query
from modeldeploy_dev.operator import OperatorProcess

CANARIES = 20
PAUSE = 5.0
INTERVAL = 5
LOAD_WINDOW = 30.0
QUERY = 'max(bench_error_rate{namespace="{{namespace}}",revision="{{revision}}"})'


def manifest(name: str, namespace: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": "bench-model", "version": version},
            "runtime": {"image": "ghcr.io/acme/server:1"},
            "replicas": 2,
            "traffic": {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "public"}]}},
            "strategy": {
                "canary": {
                    "steps": [
                        {"weight": 20, "pause": f"{int(PAUSE)}s"},
                        {"weight": 50, "pause": f"{int(PAUSE)}s"},
                        {"weight": 80},
                    ]
                }
            },
            "analysis": {
                "interval": f"{INTERVAL}s",
                "metrics": [{"name": "error-rate", "query": QUERY, "max": 0.05}],
            },
        },
    }


def revision_of(doc: dict[str, Any]) -> str:
    parsed = parse_spec(doc["spec"])
    return revision_name(doc["metadata"]["name"], revision_source(parsed.model, parsed.runtime))


@dataclass
class CanaryFigures:
    step_overhead_median: float
    step_overhead_max: float
    reaction_median: float
    reaction_max: float
    verdict_to_route_max: float
    queries_per_minute_per_canary: float


def _weights(client: KubeClient, namespace: str) -> dict[str, int]:
    """Candidate weight per ModelDeployment (0 when only the stable backend is routed)."""
    found: dict[str, int] = {}
    for route in client.list_objects(HTTPROUTE, namespace):
        refs = route["spec"]["rules"][0]["backendRefs"]
        found[route["metadata"]["name"]] = next(
            (b.get("weight", 0) for b in refs if b["name"].endswith("-candidate")), 0
        )
    return found


def _queries(operator: OperatorProcess) -> float:
    total = 0.0
    for match in re.finditer(
        r"^modeldeploy_prometheus_queries_total\{[^}]*\} ([0-9.e+]+)$", operator.metrics(), re.MULTILINE
    ):
        total += float(match.group(1))
    return total


def run(cluster: LocalCluster, namespace: str, log_dir: Path) -> CanaryFigures:
    client = KubeClient.from_environment(str(cluster.kubeconfig))
    names = [f"c{i:02d}" for i in range(CANARIES)]
    create_namespace(cluster, namespace)
    operator = OperatorProcess(
        cluster.operator_kubeconfig,
        log_dir / "operator-canaries.log",
        "--namespace",
        namespace,
        "--prometheus-url",
        cluster.prometheus_url,
        "--resync",
        "300",
    )
    operator.start()
    exporter = Exporter(cluster.scrape_targets_dir)
    try:
        for name in names:
            client.create(MODEL_DEPLOYMENT, manifest(name, namespace, "1.0.0"))
        wait(
            "v1 Stable",
            lambda: all(
                (m.get("status") or {}).get("phase") == "Stable"
                for m in client.list_objects(MODEL_DEPLOYMENT, namespace)
            ),
            300,
            1,
        )
        candidates = {name: revision_of(manifest(name, namespace, "2.0.0")) for name in names}
        for name in names:
            exporter.set("bench_error_rate", 0.001, namespace=namespace, revision=candidates[name])
        wait(
            "exported",
            lambda: (
                len(query(cluster.prometheus_url, f'bench_error_rate{{namespace="{namespace}"}}')) == CANARIES
            ),
            60,
        )
        for name in names:
            client.apply(MODEL_DEPLOYMENT, manifest(name, namespace, "2.0.0"))
        seen: dict[str, dict[int, float]] = {name: {} for name in names}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            now = time.monotonic()
            for name, weight in _weights(client, namespace).items():
                seen[name].setdefault(weight, now)
            if all(80 in steps for steps in seen.values()):
                break
            time.sleep(0.1)
        overheads = [steps[b] - steps[a] - PAUSE for steps in seen.values() for a, b in ((20, 50), (50, 80))]
        # Prometheus load in steady state: every canary held at its last step, analysis running.
        queries_before, load_started = _queries(operator), time.monotonic()
        time.sleep(LOAD_WINDOW)
        minutes = (time.monotonic() - load_started) / 60
        queries = (_queries(operator) - queries_before) / minutes / CANARIES

        for name in names:
            exporter.set("bench_error_rate", 0.3, namespace=namespace, revision=candidates[name])
        visible: dict[str, float] = {}
        back: dict[str, float] = {}
        back_wall: dict[str, float] = {}
        deadline = time.monotonic() + 120
        while len(back) < CANARIES and time.monotonic() < deadline:
            now = time.monotonic()
            for sample in query(cluster.prometheus_url, f'bench_error_rate{{namespace="{namespace}"}} > 0.2'):
                owner = next(n for n, r in candidates.items() if r == sample["metric"]["revision"])
                visible.setdefault(owner, now)
            for name, weight in _weights(client, namespace).items():
                if weight == 0 and name in visible and name not in back:
                    back[name] = now
                    back_wall[name] = time.time()
            time.sleep(0.05)
        reactions = [back[n] - visible[n] for n in names if n in back and n in visible]
        verdict_to_route = [_verdict_lag(client, namespace, n, back_wall[n]) for n in back_wall]
        if len(reactions) < CANARIES:
            raise RuntimeError(f"only {len(reactions)} of {CANARIES} canaries rolled back")
        return CanaryFigures(
            step_overhead_median=round(statistics.median(overheads), 2),
            step_overhead_max=round(max(overheads), 2),
            reaction_median=round(statistics.median(reactions), 2),
            reaction_max=round(max(reactions), 2),
            verdict_to_route_max=round(max(verdict_to_route), 2),
            queries_per_minute_per_canary=round(queries, 1),
        )
    finally:
        exporter.close()
        operator.stop()


def _verdict_lag(client: KubeClient, namespace: str, name: str, routed_at: float) -> float:
    """Seconds from the failing measurement (measuredAt, whole seconds) to the route change."""
    from datetime import datetime

    obj = client.get(MODEL_DEPLOYMENT, namespace, name) or {}
    results = (obj.get("status") or {}).get("analysis") or []
    measured = [r["measuredAt"] for r in results if r.get("phase") == "Failed" and r.get("measuredAt")]
    if not measured:
        return float("nan")
    at = datetime.fromisoformat(max(measured).replace("Z", "+00:00")).timestamp()
    return routed_at - at
