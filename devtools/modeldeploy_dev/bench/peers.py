"""The same work for modeldeploy and for the tools an SRE would install instead: Argo Rollouts, Flagger.

Per controller and per N, on the same local control plane and kwok nodes:

1. convergence: N applications (2 replicas each) applied at once, until every one is healthy,
   against a baseline client applying the same Deployments and Services itself;
2. idle: the controller's API requests while nothing changes;
3. a full rollout: a new version for all N at once, until every one is promoted; canary steps
   10/30/60 % with 10 s pauses (Flagger: 6 analysis iterations of 5 s, its kubernetes provider
   has no weights), so the overhead is what the rollout took beyond the 30 s of pauses;
4. Prometheus load: a third version held at its last step, queries counted for 30 s by a
   counting proxy in front of Prometheus (every controller reads Prometheus through it);
5. rollback: the held version's error rate breaches, each application's at its own moment over
   one analysis interval; from the breach visible in Prometheus to
   the controller's status saying all traffic is back on stable. The proxy notes when each
   controller got its first answer above the breach, which splits the reaction into the wait for
   a query (up to one interval, shared by all) and what the controller took after the answer.

Every controller routes by plain Services (the routing all three support), analyses one metric
every 5 s with a one-failure limit, runs scoped to its namespace as a host process with a user of
its own (so the audit log tells its requests apart), with its own defaults for worker counts.
Client rate limits: Argo Rollouts and Flagger run at ``--qps``/``--burst`` QPS/BURST; modeldeploy
has no client-side limiter (its requests are bounded by its workers), so these values are chosen
high enough that no peer's limiter binds before the API server does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from modeldeploy.kube.client import Kind, KubeClient
from modeldeploy.kube.kinds import BY_KIND, DEPLOYMENT, MODEL_DEPLOYMENT
from modeldeploy_dev.bench.convergence import (
    THREADS,
    Footprint,
    audit_counts,
    create_namespace,
    delete_namespace,
    final_objects,
    footprint,
    utc_stamp,
    wait,
)
from modeldeploy_dev.binaries import ensure_peers, peer_crd_files
from modeldeploy_dev.cluster import LocalCluster, free_port
from modeldeploy_dev.metrics import Exporter, query
from modeldeploy_dev.operator import OperatorProcess

REPLICAS = 2
WEIGHTS = (10, 30, 60)
PAUSE = 10
INTERVAL = 5
NOMINAL = PAUSE * len(WEIGHTS)  # seconds of pauses in a full rollout
FLAGGER_ITERATIONS = NOMINAL // INTERVAL  # the same 30 s of analysis, in Flagger's blue/green terms
HOLD_ITERATIONS = 10_000
QPS = 200
BURST = 400
LOAD_WINDOW = 30.0
METRIC = "bench_error_rate"
BREACH = 0.3  # the error rate the held version breaches with (every analysis fails above 0.05)
BREACH_VISIBLE = 0.2
IMAGE = "ghcr.io/acme/server:1"

ROLLOUT = Kind("argoproj.io/v1alpha1", "Rollout", "rollouts")
ANALYSIS_TEMPLATE = Kind("argoproj.io/v1alpha1", "AnalysisTemplate", "analysistemplates")
CANARY = Kind("flagger.app/v1beta1", "Canary", "canaries")
METRIC_TEMPLATE = Kind("flagger.app/v1beta1", "MetricTemplate", "metrictemplates")
KINDS = {k.kind: k for k in (ROLLOUT, ANALYSIS_TEMPLATE, CANARY, METRIC_TEMPLATE)} | BY_KIND


def error_query(namespace: str, app: str) -> str:
    return f'max({METRIC}{{namespace="{namespace}",app="{app}"}})'


APP_LABEL = re.compile(r'app="([^"]+)"')


def breaching_apps(query_text: str, answer: bytes, threshold: float) -> set[str]:
    """The application a query names (its ``app`` label matcher) when its answer holds a value
    above threshold; empty when it names none, failed, or answered below."""
    app = APP_LABEL.search(query_text)
    if not app:
        return set()
    try:
        results = json.loads(answer)["data"]["result"]
        values = [float(sample["value"][1]) for sample in results]
    except (ValueError, KeyError, TypeError):
        return set()
    return {app.group(1)} if any(v > threshold for v in values) else set()


class CountingProxy:
    """An HTTP proxy in front of Prometheus on 127.0.0.1 that counts the queries it forwards.

    After ``watch_breach(threshold)``, it also notes per application the time the first answer
    above threshold left it: what the controller knew, and from when. The rollback reaction splits
    there into the wait for a query (bound by the analysis interval) and the controller's own part.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.queries = 0
        self.breaching: dict[str, float] = {}
        self._threshold: float | None = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.path.startswith("/api/v1/query"):
                    with proxy._lock:
                        proxy.queries += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
                try:
                    answer = requests.request(
                        method, proxy.upstream + self.path, data=body, headers=headers, timeout=30
                    )
                    status, content, kind = (
                        answer.status_code,
                        answer.content,
                        answer.headers.get("Content-Type", "application/json"),
                    )
                except requests.RequestException as error:
                    status, content, kind = 502, str(error).encode(), "text/plain"
                if proxy._threshold is not None and self.path.startswith("/api/v1/query"):
                    proxy._note_answer(self.path, body, content)  # before the caller can have it
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def watch_breach(self, threshold: float) -> None:
        with self._lock:
            self.breaching.clear()
            self._threshold = threshold

    def _note_answer(self, path: str, body: bytes | None, content: bytes) -> None:
        params = parse_qs(urlsplit(path).query) | parse_qs((body or b"").decode(errors="replace"))
        threshold, now = self._threshold, time.monotonic()
        if threshold is None:
            return
        for text in params.get("query", []):
            for app in breaching_apps(text, content, threshold):
                with self._lock:
                    self.breaching.setdefault(app, now)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the controllers -------------------------------------------------------------------------


class Controller:
    """One controller under test: its manifests, how to read its progress, its process."""

    name: str
    user: str
    kind: Kind

    def __init__(self, cluster: LocalCluster, namespace: str, prometheus: str, log_dir: Path) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.prometheus = prometheus
        self.log_dir = log_dir

    def shared(self) -> list[dict[str, Any]]:
        """Objects applied once per namespace (templates)."""
        return []

    def app(self, name: str, version: str, hold: bool) -> list[dict[str, Any]]:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def pid(self) -> int:
        raise NotImplementedError

    # Progress, read from one LIST of the controller's own resource.
    def healthy(self, obj: dict[str, Any]) -> bool:
        raise NotImplementedError

    def promoted(self, obj: dict[str, Any], version: str) -> bool:
        raise NotImplementedError

    def held(self, obj: dict[str, Any]) -> bool:
        raise NotImplementedError

    def rolled_back(self, obj: dict[str, Any]) -> bool:
        raise NotImplementedError


def _container(version: str) -> dict[str, Any]:
    return {
        "name": "server",
        "image": IMAGE,
        "env": [{"name": "MODEL_VERSION", "value": version}],
        "ports": [{"name": "http", "containerPort": 8080}],
    }


def _service(name: str, namespace: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


class ModelDeploy(Controller):
    name = "modeldeploy"
    user = "modeldeploy-operator"
    kind = MODEL_DEPLOYMENT
    extra_args: tuple[str, ...] = ()  # `--modeldeploy-args`: flags beyond the defaults, named in the row

    def app(self, name: str, version: str, hold: bool) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = [{"weight": w, "pause": f"{PAUSE}s"} for w in WEIGHTS]
        if hold:
            steps[-1] = {"weight": WEIGHTS[-1]}  # no pause: held at the last step
        return [
            {
                "apiVersion": "modeldeploy.io/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {
                    "model": {"name": "bench-model", "version": version},
                    "runtime": {"image": IMAGE},
                    "replicas": REPLICAS,
                    "traffic": {"router": "service"},
                    "strategy": {"canary": {"steps": steps}},
                    "analysis": {
                        "interval": f"{INTERVAL}s",
                        "metrics": [
                            {"name": "error-rate", "query": error_query(self.namespace, name), "max": 0.05}
                        ],
                    },
                },
            }
        ]

    def start(self) -> None:
        self.process = OperatorProcess(
            self.cluster.operator_kubeconfig,
            self.log_dir / f"modeldeploy-{self.namespace}.log",
            "--namespace",
            self.namespace,
            "--prometheus-url",
            self.prometheus,
            "--resync",
            "300",
            *self.extra_args,
        )
        self.process.start()

    def stop(self) -> None:
        # The operator's own metrics (reconciles, slow-I/O jobs, quiet rounds) beside its log.
        try:
            with urllib.request.urlopen(self.process.metrics_url, timeout=10) as answer:
                (self.log_dir / f"modeldeploy-{self.namespace}-metrics.txt").write_bytes(answer.read())
        except OSError as error:
            (self.log_dir / f"modeldeploy-{self.namespace}-metrics.txt").write_text(f"not read: {error}\n")
        self.process.stop()

    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def healthy(self, obj: dict[str, Any]) -> bool:
        return _status(obj).get("phase") == "Stable"

    def promoted(self, obj: dict[str, Any], version: str) -> bool:
        status = _status(obj)
        return status.get("phase") == "Stable" and (status.get("stable") or {}).get("version") == version

    def held(self, obj: dict[str, Any]) -> bool:
        return (_status(obj).get("candidate") or {}).get("weight") == WEIGHTS[-1]

    def rolled_back(self, obj: dict[str, Any]) -> bool:
        status = _status(obj)
        return status.get("phase") == "RolledBack" or (
            status.get("candidate") is None and status.get("phase") == "Stable"
        )


class _HostProcess(Controller):
    """A Go controller run as a host process (its log in the bench's state directory)."""

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def start(self) -> None:
        command, env = self.command()
        log = self.log_dir / f"{self.name}-{self.namespace}.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **env},
            )
        time.sleep(2)
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def pid(self) -> int:
        return self.process.pid


class ArgoRollouts(_HostProcess):
    """A Rollout with the canary strategy and plain canary/stable Services (no traffic router:
    weights by replica ratio), background analysis from an AnalysisTemplate with the Prometheus
    provider, as in Argo Rollouts' docs (features/canary, features/analysis)."""

    name = "argo-rollouts"
    user = "argo-rollouts-controller"
    kind = ROLLOUT

    def shared(self) -> list[dict[str, Any]]:
        return [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AnalysisTemplate",
                "metadata": {"name": "error-rate", "namespace": self.namespace},
                "spec": {
                    "args": [{"name": "app"}],
                    "metrics": [
                        {
                            "name": "error-rate",
                            "interval": f"{INTERVAL}s",
                            "failureLimit": 0,  # the first failing measurement aborts (modeldeploy: 1)
                            "successCondition": "result[0] <= 0.05",
                            "provider": {
                                "prometheus": {
                                    "address": self.prometheus,
                                    "query": error_query(self.namespace, "{{args.app}}"),
                                }
                            },
                        }
                    ],
                },
            }
        ]

    def app(self, name: str, version: str, hold: bool) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = []
        for weight in WEIGHTS:
            steps += [{"setWeight": weight}, {"pause": {"duration": f"{PAUSE}s"}}]
        if hold:
            steps[-1] = {"pause": {}}  # an indefinite pause: held at the last step
        return [
            _service(f"{name}-stable", self.namespace, name),
            _service(f"{name}-canary", self.namespace, name),
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {
                    "replicas": REPLICAS,
                    "revisionHistoryLimit": 2,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [_container(version)]},
                    },
                    "strategy": {
                        "canary": {
                            "canaryService": f"{name}-canary",
                            "stableService": f"{name}-stable",
                            "analysis": {
                                "templates": [{"templateName": "error-rate"}],
                                "args": [{"name": "app", "value": name}],
                            },
                            "steps": steps,
                        }
                    },
                },
            },
        ]

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary = ensure_peers(only=[self.name])["rollouts-controller"]
        return (
            [
                str(binary),
                "--kubeconfig",
                str(self.cluster.peer_kubeconfig("argo-rollouts")),
                "--namespaced",
                "--namespace",
                self.namespace,
                "--leader-elect=false",
                "--qps",
                str(QPS),
                "--burst",
                str(BURST),
                "--metricsPort",
                str(free_port()),
                "--healthzPort",
                str(free_port()),
                "--loglevel",
                "info",
            ],
            {"POD_NAMESPACE": self.namespace},
        )

    def healthy(self, obj: dict[str, Any]) -> bool:
        status = _status(obj)
        return status.get("phase") == "Healthy" and status.get("availableReplicas") == REPLICAS

    def promoted(self, obj: dict[str, Any], version: str) -> bool:
        status = _status(obj)
        return (
            status.get("phase") == "Healthy"
            and _template_version(obj) == version
            and str(status.get("observedGeneration")) == str(obj["metadata"]["generation"])
            and status.get("stableRS") == status.get("currentPodHash")
            and status.get("currentStepIndex") == len(WEIGHTS) * 2
        )

    def held(self, obj: dict[str, Any]) -> bool:
        return _status(obj).get("currentStepIndex") == len(WEIGHTS) * 2 - 1

    def rolled_back(self, obj: dict[str, Any]) -> bool:
        return bool(_status(obj).get("abort"))


class Flagger(_HostProcess):
    """A Deployment with a Canary of the kubernetes provider and a MetricTemplate of the Prometheus
    provider, as in Flagger's docs (tutorials/kubernetes-blue-green, usage/metrics). The kubernetes
    provider has no weighted canary: it runs blue/green, here 6 iterations of 5 s (the 30 s the
    others pause), and promotes by copying the target's spec to the -primary Deployment."""

    name = "flagger"
    user = "flagger"
    kind = CANARY

    def shared(self) -> list[dict[str, Any]]:
        return [
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "MetricTemplate",
                "metadata": {"name": "error-rate", "namespace": self.namespace},
                "spec": {
                    "provider": {"type": "prometheus", "address": self.prometheus},
                    "query": f'max({METRIC}{{namespace="{{{{ namespace }}}}",app="{{{{ target }}}}"}})',
                },
            }
        ]

    def app(self, name: str, version: str, hold: bool) -> list[dict[str, Any]]:
        return [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {
                    "replicas": REPLICAS,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [_container(version)]},
                    },
                },
            },
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "Canary",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {
                    "provider": "kubernetes",
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "progressDeadlineSeconds": 600,
                    "service": {"port": 80, "targetPort": 8080},
                    "analysis": {
                        "interval": f"{INTERVAL}s",
                        "threshold": 1,  # the first failed check rolls back
                        "iterations": HOLD_ITERATIONS if hold else FLAGGER_ITERATIONS,
                        "metrics": [
                            {
                                "name": "error-rate",
                                "templateRef": {"name": "error-rate"},
                                "thresholdRange": {"max": 0.05},
                                "interval": "1m",
                            }
                        ],
                    },
                },
            },
        ]

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary = ensure_peers(only=[self.name])["flagger"]
        return (
            [
                str(binary),
                "-kubeconfig",
                str(self.cluster.peer_kubeconfig("flagger")),
                "-namespace",
                self.namespace,
                "-mesh-provider",
                "kubernetes",
                "-metrics-server",
                self.prometheus,
                "-kubeconfig-qps",
                str(QPS),
                "-kubeconfig-burst",
                str(BURST),
                "-port",
                str(free_port()),
                "-log-level",
                "info",
            ],
            {},
        )

    def healthy(self, obj: dict[str, Any]) -> bool:
        return _status(obj).get("phase") in ("Initialized", "Succeeded")

    def promoted(self, obj: dict[str, Any], version: str) -> bool:
        return _status(obj).get("phase") == "Succeeded"

    def held(self, obj: dict[str, Any]) -> bool:
        status = _status(obj)
        return status.get("phase") == "Progressing" and int(status.get("iterations") or 0) >= 1

    def rolled_back(self, obj: dict[str, Any]) -> bool:
        return _status(obj).get("phase") == "Failed"


CONTROLLERS: dict[str, type[Controller]] = {c.name: c for c in (ModelDeploy, ArgoRollouts, Flagger)}


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status") or {}


def _template_version(obj: dict[str, Any]) -> str | None:
    containers = obj["spec"]["template"]["spec"]["containers"]
    return next((e["value"] for e in containers[0].get("env", []) if e["name"] == "MODEL_VERSION"), None)


# --- one run ----------------------------------------------------------------------------------


@dataclass
class PeerRow:
    controller: str
    n: int
    baseline_s: float
    converge_s: float
    reads_converging: int
    writes_converging: int
    idle_s: float
    reads_idle: int
    writes_idle: int
    rollout_s: float
    overhead_median: float
    overhead_max: float
    queries_per_minute_per_canary: float
    reaction_median: float
    reaction_max: float
    footprint: Footprint
    after_answer_median: float | None = None  # rollback after the first breaching answer left the proxy
    after_answer_max: float | None = None
    load_average: str = ""
    flags: str = ""  # flags beyond the controller's defaults


PEER_CRDS = {
    "argo-rollouts": ("crd/rollouts.argoproj.io", "crd/analysistemplates.argoproj.io"),
    "flagger": ("crd/canaries.flagger.app", "crd/metrictemplates.flagger.app"),
}


PEAK_PODS_PER_APP = 2 * REPLICAS
"""Stable and candidate both at full size at once (a canary at 60 % of 2 replicas runs 2; blue/green 2)."""

CONTROLLER_MANAGER_QPS: int | None = None
"""kube-controller-manager's client QPS in this run (None: its default, 20), named in each row."""


def row_flags(controller: str, extra_args: Sequence[str], controller_manager_qps: int | None) -> str:
    """What a row ran with beyond the defaults: modeldeploy's extra flags, the controller-manager's QPS."""
    flags = list(extra_args) if controller == ModelDeploy.name else []
    if controller_manager_qps:
        flags.append(f"controller-manager at {controller_manager_qps} QPS")
    return " ".join(flags)


def install_peer_crds(cluster: LocalCluster, controllers: list[str]) -> None:
    for peer in (c for c in controllers if c in PEER_CRDS):
        for path in peer_crd_files(peer):
            cluster.kubectl("apply", "--server-side", "-f", str(path), timeout=120)
        cluster.wait_established(*PEER_CRDS[peer])


def _apply_all(client: KubeClient, objects: list[dict[str, Any]]) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda obj: client.apply(KINDS[obj["kind"]], obj), objects))


def baseline(cluster: LocalCluster, n: int, namespace: str) -> float:
    """The control plane's own limit: the Deployments (2 replicas) and Services modeldeploy ends up
    with, applied by one client with many threads, until every pod is Ready."""
    client = KubeClient.from_environment(str(cluster.kubeconfig))
    create_namespace(cluster, namespace)
    shape = ModelDeploy(cluster, namespace, "", Path())
    objects = [obj for i in range(n) for obj in final_objects(shape.app(f"a{i:04d}", "1.0.0", False)[0])]
    started = time.monotonic()
    _apply_all(client, objects)

    def all_ready() -> bool:
        items = client.list_objects(DEPLOYMENT, namespace)
        return len(items) == n and all(d.get("status", {}).get("readyReplicas") == REPLICAS for d in items)

    wait("baseline Deployments ready", all_ready, 3600, 1.0)
    return time.monotonic() - started


def breach(exporter: Exporter, namespace: str, names: list[str]) -> None:
    """Each application's error rate breaches at its own moment, spread evenly over one analysis
    interval: where a breach falls against a controller's query times is then uniform, as it is
    for a real incident. (All at once, the median would hang on where that one moment falls
    against the cluster of queries of N canaries that entered their step together.)"""
    started = time.monotonic()
    for i, name in enumerate(names):
        time.sleep(max(0.0, started + i * INTERVAL / len(names) - time.monotonic()))
        exporter.set(METRIC, BREACH, namespace=namespace, app=name)


def watch_until(
    client: KubeClient,
    kind: Kind,
    namespace: str,
    names: list[str],
    done: Callable[[dict[str, Any]], bool],
    timeout: float,
    on_poll: Callable[[float], None] | None = None,
) -> dict[str, float]:
    """Monotonic time at which each object was first seen to satisfy done.

    One LIST, then a watch from its resourceVersion, read in a thread of its own (listed again
    when the watch ends or its version has expired). The times are those the events arrive at,
    and the API server sends the changes only: a poll would serialize all N objects each time,
    which costs the most for the controller whose objects are largest. on_poll runs every 0.25 s.
    """
    seen: dict[str, float] = {}
    wanted = set(names)
    stop = threading.Event()
    failures: list[BaseException] = []
    group, version = kind.api_version.split("/")
    api = k8s.CustomObjectsApi(k8s.ApiClient(client.kubernetes_configuration()))

    def note(obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if name in wanted and name not in seen and done(obj):
            seen[name] = time.monotonic()

    def follow() -> None:
        try:
            while not stop.is_set():
                items, resource_version = client.list_with_version(kind, namespace)
                for obj in items:
                    note(obj)
                events = k8s_watch.Watch()  # type: ignore[no-untyped-call]
                try:
                    for event in events.stream(  # type: ignore[no-untyped-call]
                        api.list_namespaced_custom_object,
                        group,
                        version,
                        namespace,
                        kind.plural,
                        resource_version=resource_version,
                        timeout_seconds=30,
                    ):
                        if event["type"] in ("ADDED", "MODIFIED"):
                            note(event["object"])
                        if stop.is_set():
                            events.stop()  # type: ignore[no-untyped-call]
                except k8s.ApiException as error:
                    if error.status != 410:  # 410 Gone: the version expired, list again
                        raise
        except BaseException as error:  # handed to the caller's thread
            failures.append(error)

    thread = threading.Thread(target=follow, name=f"watch-{kind.plural}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(seen) < len(wanted) and not failures:
            if on_poll:
                on_poll(time.monotonic())
            time.sleep(0.25)
    finally:
        stop.set()
    if failures:
        raise RuntimeError(f"watching {kind.plural} in {namespace} failed") from failures[0]
    missing = sorted(wanted - set(seen))
    if missing:
        raise TimeoutError(f"{len(missing)} of {len(wanted)} not done after {timeout:.0f}s: {missing[:5]}")
    return dict(seen)


def run(
    cluster: LocalCluster,
    controller_name: str,
    n: int,
    baseline_s: float,
    idle_seconds: float,
    log_dir: Path,
    log: Callable[[str], None],
) -> PeerRow:
    namespace = f"{controller_name}-{n}"
    client = KubeClient.from_environment(str(cluster.kubeconfig))
    proxy = CountingProxy(cluster.prometheus_url)
    exporter = Exporter(cluster.scrape_targets_dir)
    controller = CONTROLLERS[controller_name](cluster, namespace, proxy.url, log_dir)
    names = [f"a{i:04d}" for i in range(n)]
    create_namespace(cluster, namespace)
    for name in names:
        exporter.set(METRIC, 0.001, namespace=namespace, app=name)
    wait(
        "exported",
        lambda: len(query(cluster.prometheus_url, f'{METRIC}{{namespace="{namespace}"}}')) == n,
        120,
    )
    _apply_all(client, controller.shared())
    controller.start()
    try:
        # 1. convergence
        start_stamp, started = utc_stamp(), time.monotonic()
        _apply_all(client, [obj for name in names for obj in controller.app(name, "1.0.0", False)])
        done = watch_until(client, controller.kind, namespace, names, controller.healthy, 3600)
        converge = max(done.values()) - started
        log(f"{controller_name} N={n}: converged in {converge:.1f}s (baseline {baseline_s:.1f}s)")
        time.sleep(5)  # the last status writes and their watch events
        converged_stamp = utc_stamp()
        # 2. idle
        time.sleep(idle_seconds)
        idle_end = utc_stamp()
        # 3. a full rollout for all N at once
        started = time.monotonic()
        _apply_all(client, [obj for name in names for obj in controller.app(name, "2.0.0", False)])
        done = watch_until(
            client, controller.kind, namespace, names, lambda o: controller.promoted(o, "2.0.0"), 3600
        )
        rollout = max(done.values()) - started
        overheads = [t - started - NOMINAL for t in done.values()]
        log(f"{controller_name} N={n}: full rollout in {rollout:.1f}s")
        # 4. Prometheus load while every canary is held at its last step
        _apply_all(client, [obj for name in names for obj in controller.app(name, "3.0.0", True)])
        watch_until(client, controller.kind, namespace, names, controller.held, 3600)
        before, load_started = proxy.queries, time.monotonic()
        time.sleep(LOAD_WINDOW)
        queries = (proxy.queries - before) / ((time.monotonic() - load_started) / 60) / n
        # 5. rollback reaction
        proxy.watch_breach(BREACH_VISIBLE)
        breaching = threading.Thread(target=breach, args=(exporter, namespace, names), daemon=True)
        breaching.start()
        visible: dict[str, float] = {}

        def breach_visible(now: float) -> None:
            breached = f'{METRIC}{{namespace="{namespace}"}} > {BREACH_VISIBLE}'
            for sample in query(cluster.prometheus_url, breached):
                visible.setdefault(sample["metric"]["app"], now)

        back = watch_until(
            client, controller.kind, namespace, names, controller.rolled_back, 600, breach_visible
        )
        breaching.join()
        reactions = [back[name] - visible.get(name, back[name]) for name in names]
        answered = [back[name] - proxy.breaching[name] for name in names if name in proxy.breaching]
        times = {name: [visible.get(name), proxy.breaching.get(name), back[name]] for name in names}
        (log_dir / f"reaction-{controller_name}-{n}.json").write_text(json.dumps(times))
        log(
            f"{controller_name} N={n}: rolled back, reaction median {statistics.median(reactions):.2f}s, "
            f"after the breaching answer {statistics.median(answered) if answered else float('nan'):.2f}s "
            f"({len(answered)} of {n} answers seen)"
        )
        usage = footprint(controller.pid())
        load = load_average()
    finally:
        try:
            delete_namespace(cluster, namespace, log)  # the controller still running: its finalizers
        finally:
            controller.stop()
            exporter.close()
            proxy.close()
    converging = audit_counts(cluster, controller.user, start_stamp, converged_stamp)
    idle = audit_counts(cluster, controller.user, converged_stamp, idle_end)
    return PeerRow(
        controller=controller_name,
        n=n,
        baseline_s=round(baseline_s, 1),
        converge_s=round(converge, 1),
        reads_converging=converging["read"],
        writes_converging=converging["write"],
        idle_s=idle_seconds,
        reads_idle=idle["read"],
        writes_idle=idle["write"],
        rollout_s=round(rollout, 1),
        overhead_median=round(statistics.median(overheads), 2),
        overhead_max=round(max(overheads), 2),
        queries_per_minute_per_canary=round(queries, 1),
        reaction_median=round(statistics.median(reactions), 2),
        reaction_max=round(max(reactions), 2),
        after_answer_median=round(statistics.median(answered), 2) if answered else None,
        after_answer_max=round(max(answered), 2) if answered else None,
        footprint=usage,
        load_average=load,
        flags=row_flags(controller_name, ModelDeploy.extra_args, CONTROLLER_MANAGER_QPS),
    )


def table(rows: list[dict[str, Any]]) -> str:
    """All controllers side by side; ratios against modeldeploy's figure at the same N."""
    lines = [
        f"Routing by plain Services; canary 10/30/60 % with {PAUSE} s pauses (Flagger: blue/green, "
        f"{FLAGGER_ITERATIONS} iterations of {INTERVAL} s); one Prometheus metric every {INTERVAL} s; "
        f"2 replicas per application; peers at --qps {QPS} --burst {BURST}, modeldeploy unlimited "
        "(bounded by its workers). Progress read by one watch per phase; each row starts once the "
        "namespace before it is deleted.",
        "",
        "| N | controller | converge (s) | / baseline | rollout wall (s) | overhead beyond 30 s pauses, "
        "median / max (s) | rollback reaction, median / max (s) | of which after the breaching answer, "
        "median / max (s) | reads / app converging | writes / app "
        "converging | reads / app idle | writes idle | Prometheus queries / min / canary | peak RSS (MB) "
        "| CPU (s) | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = list(CONTROLLERS)
    for row in sorted(rows, key=lambda r: (r["n"], order.index(r["controller"]))):
        n = row["n"]
        fp = row["footprint"]
        lines.append(
            f"| {n} | {row['controller']}{f' ({flags})' if (flags := row.get('flags')) else ''} "
            f"| {row['converge_s']} "
            f"| {row['converge_s'] / row['baseline_s']:.2f} "
            f"| {row['rollout_s']} | {row['overhead_median']} / {row['overhead_max']} "
            f"| {row['reaction_median']} / {row['reaction_max']} "
            f"| {_pair(row.get('after_answer_median'), row.get('after_answer_max'))} "
            f"| {row['reads_converging'] / n:.2f} | {row['writes_converging'] / n:.2f} "
            f"| {row['reads_idle'] / n:.2f} | {row['writes_idle']} "
            f"| {row['queries_per_minute_per_canary']} | {fp['peak_rss_mb']} | {fp['cpu_seconds']} "
            f"| {row['load_average']} |"
        )
    return "\n".join(lines)


def _pair(median: float | None, maximum: float | None) -> str:
    return "—" if median is None else f"{median} / {maximum}"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def to_json(row: PeerRow) -> dict[str, Any]:
    from dataclasses import asdict

    converted: dict[str, Any] = json.loads(json.dumps(asdict(row)))
    return converted
