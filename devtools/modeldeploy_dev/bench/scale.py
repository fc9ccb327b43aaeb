"""Scale: one operator holding more and more ModelDeployments (300, 1000, 3000 by default).

One operator process runs throughout, and N is raised in steps: at each step the
new ModelDeployments are created at once (32 threads) and converge to Stable;
then, with N held at rest, single changes are made one at a time. Per step:

- **convergence** of the step's new ModelDeployments, and their event-to-write
  latency: from the API server receiving each create to the operator's first
  write for that ModelDeployment (its Deployment, Service or status), p50 and
  p99. A burst: time spent queueing behind the rest of the burst is included;
- **one change at rest**: ``PROBES`` spec changes, one at a time (each waits for
  the operator's write before the next), from the API server receiving the patch
  to the operator's first write for it, p50 and p99. With N held, this is what
  a user waits for, and what grows with N if anything in the operator scans all
  of them;
- the operator's **RSS** at rest with N held (VmRSS, and the peak so far), and
  the CPU seconds the step cost the operator, the API server, etcd and the
  controller-manager (whose Deployment and ReplicaSet controllers make the pods;
  at its default client limit of 20 requests a second);
- the operator's own work-queue figures (``modeldeploy_workqueue_wait_seconds``,
  ``modeldeploy_reconcile_duration_seconds``) read from its metrics endpoint:
  the mean wait and the mean reconcile during the step.

Times come from the audit log (microsecond stamps of the API server's own
clock), not from the bench's watch, so nothing on the bench side is measured.
Not in CI: ``make bench BENCH_ARGS=--scale`` (``--n`` picks the steps).
"""

from __future__ import annotations

import statistics
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import DEPLOYMENT, MODEL_DEPLOYMENT
from modeldeploy.plan.revisions import LABEL_NAME
from modeldeploy_dev.bench.convergence import (
    THREADS,
    WRITE_VERBS,
    audit_entries,
    cpu_seconds,
    create_namespace,
    manifest,
    memory_mb,
    namespaced_operator,
    utc_stamp,
    wait,
)
from modeldeploy_dev.bench.peers import watch_until
from modeldeploy_dev.cluster import LocalCluster

PROBES = 30
CONTROL_PLANE = ("kube-apiserver", "etcd", "kube-controller-manager")
OPERATOR = "modeldeploy-operator"


@dataclass
class ScalePoint:
    n: int
    added: int
    converge_s: float
    burst_p50_s: float
    burst_p99_s: float
    change_p50_s: float
    change_p99_s: float
    rss_mb: float
    peak_rss_mb: float
    operator_cpu_s: float
    apiserver_cpu_s: float
    etcd_cpu_s: float
    controller_manager_cpu_s: float
    queue_wait_mean_s: float
    reconcile_mean_s: float


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def first_writes(
    entries: list[dict[str, Any]], namespace: str, names: set[str], verbs: set[str], sub: str | None
) -> dict[str, float]:
    """Per name: the seconds from the latest request (by anyone but the operator) of ``verbs`` on
    that ModelDeployment to the operator's first write for it after that request.

    A write is "for" ModelDeployment m when it names m itself, or one of its children (named
    ``m-...``); names are zero-padded to one length, so no name is a prefix of another.
    """
    asked: dict[str, float] = {}
    answered: dict[str, float] = {}
    for entry in sorted(entries, key=lambda e: e["requestReceivedTimestamp"]):
        ref = entry.get("objectRef") or {}
        if ref.get("namespace") != namespace:
            continue
        at = _stamp(entry["requestReceivedTimestamp"])
        user = entry.get("user", {}).get("username")
        name = ref.get("name") or ""
        if user != OPERATOR:
            if (
                ref.get("resource") == "modeldeployments"
                and name in names
                and entry["verb"] in verbs
                and ref.get("subresource") == sub
            ):
                asked[name] = at
                answered.pop(name, None)
            continue
        if entry["verb"] not in WRITE_VERBS or ref.get("resource") == "events":
            continue
        if ref.get("resource") == "modeldeployments" and ref.get("subresource") != "status":
            continue  # the finalizer and kopf's own records: bookkeeping, not the answer
        owner = name if name in names else name.split("-", 1)[0]
        if owner in asked and owner not in answered:
            answered[owner] = at - asked[owner]
    return answered


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _scrape(url: str) -> dict[str, float]:
    """Sums and counts of the work queue's wait and of reconcile time, from the operator's metrics."""
    wanted = (
        "modeldeploy_workqueue_wait_seconds_sum",
        "modeldeploy_workqueue_wait_seconds_count",
        "modeldeploy_reconcile_duration_seconds_sum",
        "modeldeploy_reconcile_duration_seconds_count",
    )
    totals = dict.fromkeys(wanted, 0.0)
    with urllib.request.urlopen(url, timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in totals:
                totals[name] += float(line.rsplit(" ", 1)[1])
    return totals


def _mean(after: dict[str, float], before: dict[str, float], metric: str) -> float:
    count = after[f"{metric}_count"] - before[f"{metric}_count"]
    return round((after[f"{metric}_sum"] - before[f"{metric}_sum"]) / count, 4) if count else 0.0


def run(
    cluster: LocalCluster,
    steps: list[int],
    log_dir: Path,
    log: Callable[[str], None],
    workers: int = 16,
) -> list[ScalePoint]:
    namespace = "scale"
    client = KubeClient.from_environment(str(cluster.kubeconfig))
    create_namespace(cluster, namespace)
    operator = namespaced_operator(cluster, namespace, log_dir / "operator-scale.log", workers)
    pids = {p.name: p.pid for p in cluster.table.processes} if cluster.table else {}
    points: list[ScalePoint] = []
    held = 0
    operator.start()
    assert operator.process is not None
    pid = operator.process.pid
    try:
        for n in sorted(steps):
            if n <= held:
                continue
            names = [f"m{i:05d}" for i in range(held, n)]
            cpu_before = {who: cpu_seconds(pids[who]) for who in CONTROL_PLANE}
            operator_before, metrics_before = cpu_seconds(pid), _scrape(operator.metrics_url)
            since, started = utc_stamp(), time.monotonic()
            with ThreadPoolExecutor(THREADS) as pool:
                list(pool.map(lambda name: client.create(MODEL_DEPLOYMENT, manifest(name, namespace)), names))

            # One watch, not a LIST of all N every few seconds: that would load the API server measured.
            stable = watch_until(client, MODEL_DEPLOYMENT, namespace, names, _is_stable, 7200)
            converge = max(stable.values()) - started
            time.sleep(5)  # the last status writes
            burst = list(
                first_writes(
                    list(audit_entries(cluster, since)), namespace, set(names), {"create"}, None
                ).values()
            )
            log(f"scale N={n}: {len(names)} more converged in {converge:.1f}s")
            # One change at a time at rest: replicas 1 -> 2 on ModelDeployments spread over all N.
            probes = [f"m{i:05d}" for i in range(0, n, max(1, n // PROBES))][:PROBES]
            since = utc_stamp()
            for name in probes:
                client.merge_patch(MODEL_DEPLOYMENT, namespace, name, {"spec": {"replicas": 2}})
                wait(
                    f"the operator's answer to {name}",
                    partial(_scaled, client, namespace, name, 2),
                    120,
                    0.05,
                )
                time.sleep(0.5)
            time.sleep(2)
            changes = list(
                first_writes(
                    list(audit_entries(cluster, since)), namespace, set(probes), {"patch"}, None
                ).values()
            )
            for name in probes:  # back to 1, so the next step's probes change something too
                client.merge_patch(MODEL_DEPLOYMENT, namespace, name, {"spec": {"replicas": 1}})
            time.sleep(10)
            rss, peak = memory_mb(pid)
            metrics_after = _scrape(operator.metrics_url)
            point = ScalePoint(
                n=n,
                added=len(names),
                converge_s=round(converge, 1),
                burst_p50_s=round(statistics.median(burst), 3),
                burst_p99_s=round(_percentile(burst, 0.99), 3),
                change_p50_s=round(statistics.median(changes), 3),
                change_p99_s=round(_percentile(changes, 0.99), 3),
                rss_mb=rss,
                peak_rss_mb=peak,
                operator_cpu_s=round(cpu_seconds(pid) - operator_before, 1),
                apiserver_cpu_s=round(cpu_seconds(pids["kube-apiserver"]) - cpu_before["kube-apiserver"], 1),
                etcd_cpu_s=round(cpu_seconds(pids["etcd"]) - cpu_before["etcd"], 1),
                controller_manager_cpu_s=round(
                    cpu_seconds(pids["kube-controller-manager"]) - cpu_before["kube-controller-manager"], 1
                ),
                queue_wait_mean_s=_mean(metrics_after, metrics_before, "modeldeploy_workqueue_wait_seconds"),
                reconcile_mean_s=_mean(
                    metrics_after, metrics_before, "modeldeploy_reconcile_duration_seconds"
                ),
            )
            log(f"scale N={n}: {point}")
            points.append(point)
            held = n
    finally:
        operator.stop()  # the cluster goes with everything in it: no deletion of N to wait for
    return points


def _is_stable(body: dict[str, Any]) -> bool:
    return (body.get("status") or {}).get("phase") == "Stable"


def _scaled(client: KubeClient, namespace: str, name: str, replicas: int) -> bool:
    """Whether the operator has set ``name``'s Deployment to ``replicas``."""
    found = client.list_objects(DEPLOYMENT, namespace, f"{LABEL_NAME}={name}")
    return bool(found) and all(d.get("spec", {}).get("replicas") == replicas for d in found)


def table(points: list[dict[str, Any]]) -> str:
    lines = [
        "| N held | added | converge added (s) | create -> first write p50 / p99 (s) | one change at rest -> "
        "first write p50 / p99 (s) | RSS at rest (MB) | peak RSS (MB) | CPU s: operator / API server / etcd "
        "/ controller-manager "
        "| queue wait mean (s) | reconcile mean (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        lines.append(
            f"| {p['n']} | {p['added']} | {p['converge_s']} | {p['burst_p50_s']} / {p['burst_p99_s']} "
            f"| {p['change_p50_s']} / {p['change_p99_s']} | {p['rss_mb']} | {p['peak_rss_mb']} "
            f"| {p['operator_cpu_s']} / {p['apiserver_cpu_s']} / {p['etcd_cpu_s']} "
            f"/ {p['controller_manager_cpu_s']} "
            f"| {p['queue_wait_mean_s']} | {p['reconcile_mean_s']} |"
        )
    return "\n".join(lines)
