"""Convergence: N ModelDeployments created at once, against a baseline that creates the same objects itself.

The baseline is the API server's own limit on this machine: a client that
server-side applies exactly the Deployments and Services the operator would
create, with many threads, then waits for every Deployment to have its pods
Ready. The operator run creates N ModelDeployments at once and waits until all
are Stable. Both wait on the same fake nodes, controllers and API server, so the
ratio is the operator's overhead.

API cost is read from the API server's audit log (every request of the
operator's identity, watches included); footprint from /proc.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import BY_KIND, DEPLOYMENT, MODEL_DEPLOYMENT
from modeldeploy.plan.inputs import Observed, RevisionState, Subject
from modeldeploy.plan.planner import plan
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.operator import OperatorProcess

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
THREADS = 32
PODS_PER_NODE = 500  # what each kwok node offers (LocalCluster)


def kwok_nodes(pods: int) -> int:
    """Fake nodes enough for ``pods`` at once with a tenth to spare (at least 5): a pod with no room
    stays Pending, and the controller waiting on it would be measured waiting on the bench."""
    return max(5, -(-pods * 11 // 10 // PODS_PER_NODE))


def manifest(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": "bench-model", "version": "1.0.0", "uri": "s3://models/bench/1.0.0"},
            "runtime": {"image": "ghcr.io/acme/server:1", "readinessPath": "/ready"},
            "replicas": 1,
        },
    }


def final_objects(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """What the operator ends up creating for one ModelDeployment (its own renderer, at rest)."""
    meta = doc["metadata"]
    subject = Subject(
        name=meta["name"],
        namespace=meta["namespace"],
        uid="00000000-bench",
        generation=1,
        spec=doc["spec"],
        status={},
    )
    first = plan(subject, Observed(), _now())
    revision = next(o["metadata"]["name"] for o in first.apply if o["kind"] == "Deployment")
    ready = Observed(revisions={revision: RevisionState(revision, 1, ready=1, updated=1, available=1)})
    settled = plan(replace(subject, status=first.status or {}), ready, _now())
    objects = []
    for obj in settled.apply:
        body = json.loads(json.dumps(obj))
        body["metadata"].pop("ownerReferences", None)  # no owner in the baseline: nothing to own them
        objects.append(body)
    return objects


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Footprint:
    peak_rss_mb: float
    cpu_seconds: float


def cpu_seconds(pid: int) -> float:
    """The CPU seconds a process has used so far (user and system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in ticks of 1/100 s


def memory_mb(pid: int) -> tuple[float, float]:
    """A process's resident memory now and at its peak (VmRSS, VmHWM), in MB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return round(values["VmRSS"] / 1024, 1), round(values["VmHWM"] / 1024, 1)


def footprint(pid: int) -> Footprint:
    return Footprint(peak_rss_mb=memory_mb(pid)[1], cpu_seconds=round(cpu_seconds(pid), 1))


def audit_entries(cluster: LocalCluster, start: str, end: str | None = None) -> Iterator[dict[str, Any]]:
    """The audit log's entries received from ``start`` to ``end`` (UTC stamps as the log writes them;
    None: to its end)."""
    # The API server rotates its audit log at 100 MB: read the rotated files too.
    for path in sorted(cluster.audit_log.parent.glob("audit*.log")):
        with path.open() as log:
            for line in log:
                entry = json.loads(line)
                stamp = entry["requestReceivedTimestamp"]
                if start <= stamp and (end is None or stamp <= end):
                    yield entry


def audit_counts(cluster: LocalCluster, user: str, start: str, end: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for entry in audit_entries(cluster, start, end):
        if entry.get("user", {}).get("username") == user:
            counts["write" if entry["verb"] in WRITE_VERBS else "read"] += 1
    return counts


def utc_stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


def wait(what: str, done: Callable[[], bool], timeout: float, interval: float = 0.5) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if done():
            return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"{what} not done after {timeout:.0f}s")


def namespaced_operator(cluster: LocalCluster, namespace: str, log: Path, workers: int) -> OperatorProcess:
    """The operator (not started) serving ``namespace`` only, with ``workers`` reconciles at once."""
    return OperatorProcess(
        cluster.operator_kubeconfig,
        log,
        "--namespace",
        namespace,
        "--workers",
        str(workers),
        "--resync",
        "300",
    )


def create_namespace(cluster: LocalCluster, namespace: str) -> None:
    """Create a namespace and wait for its default ServiceAccount (pods need it)."""
    cluster.kubectl("create", "namespace", namespace)
    wait(
        "default ServiceAccount",
        lambda: cluster.kubectl("-n", namespace, "get", "sa", "default", check=False).returncode == 0,
        60,
    )


def delete_namespace(cluster: LocalCluster, namespace: str, log: Callable[[str], None]) -> None:
    """Delete a namespace and wait until it is gone, so that no deletion loads the next row.

    A controller's own namespace is deleted while it still runs: it removes its finalizers
    (modeldeploy's, Flagger's) and nothing is left stuck.
    """
    started = time.monotonic()
    result = cluster.kubectl(
        "delete", "namespace", namespace, "--wait=true", "--timeout=900s", check=False, timeout=960
    )
    took = time.monotonic() - started
    if result.returncode != 0:
        log(f"namespace {namespace} not deleted after {took:.0f}s: {result.stderr.strip()}")
    else:
        log(f"namespace {namespace} deleted in {took:.0f}s")


def baseline(cluster: LocalCluster, n: int, namespace: str) -> float:
    """Seconds for a client to create the same final objects itself and see every pod Ready."""
    client = KubeClient.from_environment(str(cluster.kubeconfig))
    create_namespace(cluster, namespace)
    objects = [obj for i in range(n) for obj in final_objects(manifest(f"m{i:04d}", namespace))]
    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda obj: client.apply(BY_KIND[obj["kind"]], obj), objects))

    def all_ready() -> bool:
        items = client.list_objects(DEPLOYMENT, namespace)
        return len(items) == n and all(d.get("status", {}).get("readyReplicas") == 1 for d in items)

    wait("baseline Deployments ready", all_ready, 1800, 1.0)
    return time.monotonic() - started


@dataclass
class OperatorRun:
    seconds: float
    convergence_reads: int
    convergence_writes: int
    idle_reads: int
    idle_writes: int
    footprint: Footprint


def operator_run(
    cluster: LocalCluster,
    n: int,
    namespace: str,
    idle_seconds: float,
    log_dir: Path,
    workers: int,
    log: Callable[[str], None] = print,
) -> OperatorRun:
    client = KubeClient.from_environment(str(cluster.kubeconfig))
    operator = namespaced_operator(cluster, namespace, log_dir / f"operator-{n}.log", workers)
    create_namespace(cluster, namespace)
    operator.start()
    assert operator.process is not None
    try:
        start_stamp = utc_stamp()
        started = time.monotonic()
        with ThreadPoolExecutor(THREADS) as pool:
            list(
                pool.map(
                    lambda i: client.create(MODEL_DEPLOYMENT, manifest(f"m{i:04d}", namespace)), range(n)
                )
            )

        def all_stable() -> bool:
            items = client.list_objects(MODEL_DEPLOYMENT, namespace)
            return len(items) == n and all((m.get("status") or {}).get("phase") == "Stable" for m in items)

        wait("ModelDeployments Stable", all_stable, 3600, 1.0)
        seconds = time.monotonic() - started
        time.sleep(5)  # the last status writes and their watch events
        converged_stamp = utc_stamp()
        time.sleep(idle_seconds)
        idle_end = utc_stamp()
        convergence = audit_counts(cluster, "modeldeploy-operator", start_stamp, converged_stamp)
        idle = audit_counts(cluster, "modeldeploy-operator", converged_stamp, idle_end)
        usage = footprint(_python_pid(operator))
    finally:
        try:
            delete_namespace(cluster, namespace, log)  # the operator still running: its finalizers
        finally:
            operator.stop()
    return OperatorRun(seconds, convergence["read"], convergence["write"], idle["read"], idle["write"], usage)


def _python_pid(operator: OperatorProcess) -> int:
    assert operator.process is not None
    return operator.process.pid
