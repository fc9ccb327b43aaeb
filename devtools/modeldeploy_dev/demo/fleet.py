"""One local model server process per revision the operator creates: the demo's stand-in for pods.

Every half second it lists the Deployments in the demo namespace. For each
revision that should run (replicas > 0) it starts ``modeldeploy_dev.demo.server``
on a free 127.0.0.1 port with the model that the Deployment's MODEL_URI names;
once that server answers ``/ready`` it registers it as a Prometheus scrape
target and marks the revision's pods Ready (the demo's manifests start pods
unready, through the local cluster's kwok annotation, as a readiness probe
would until the model is loaded). A revision scaled to zero or deleted has
its server stopped and its scrape target removed, after a few seconds of
draining (as a terminating pod keeps serving while endpoints and the proxy
catch up), so no live request is dropped at a switch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeldeploy.kube.client import Kind, KubeClient
from modeldeploy.kube.kinds import DEPLOYMENT
from modeldeploy_dev.cluster import free_port
from modeldeploy_dev.demo.models import path_for
from modeldeploy_dev.demo.routing import REVISION_LABEL

POD = Kind("v1", "Pod", "pods")
UNREADY = "kwok.modeldeploy.io/unready"
REFRESH_SECONDS = 0.5
DRAIN_SECONDS = 3.0


@dataclass
class Server:
    revision: str
    version: str
    port: int
    process: subprocess.Popen[bytes]
    target: Path
    ready: bool = False
    unwanted_since: float | None = None

    def answers_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=0.5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        self.target.unlink(missing_ok=True)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def wanted_revisions(deployments: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """revision -> (MODEL_VERSION, MODEL_URI) of every Deployment that wants replicas and names a model."""
    wanted: dict[str, tuple[str, str]] = {}
    for deployment in deployments:
        spec = deployment.get("spec", {})
        template = spec.get("template", {})
        revision = (template.get("metadata", {}).get("labels") or {}).get(REVISION_LABEL)
        if not revision or not spec.get("replicas"):
            continue
        env: dict[str, str] = {}
        for container in template.get("spec", {}).get("containers", []):
            env.update({e["name"]: e.get("value", "") for e in container.get("env") or []})
        if "MODEL_URI" in env:
            wanted[str(revision)] = (env.get("MODEL_VERSION", "?"), env["MODEL_URI"])
    return wanted


class Fleet:
    def __init__(self, api: KubeClient, namespace: str, store: Path, targets_dir: Path, logs: Path) -> None:
        self.api = api
        self.namespace = namespace
        self.store = store
        self.targets_dir = targets_dir
        self.logs = logs
        self.servers: dict[str, Server] = {}
        self.versions: dict[str, str] = {}  # every revision ever served -> its model version
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)

    def port_of(self, revision: str) -> int | None:
        """Where a revision's server listens, once it is ready (what the proxy asks)."""
        with self._lock:
            server = self.servers.get(revision)
            return server.port if server is not None and server.ready else None

    def version_of(self, revision: str) -> str | None:
        with self._lock:
            return self.versions.get(revision)

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        with self._lock:
            servers, self.servers = list(self.servers.values()), {}
        for server in servers:
            server.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
            except Exception as error:  # the API server is briefly unreachable: try again
                self.problems.append(f"{time.strftime('%H:%M:%S')} {error}")
            self._stop.wait(REFRESH_SECONDS)

    def reconcile(self) -> None:
        wanted = wanted_revisions(self.api.list_objects(DEPLOYMENT, self.namespace))
        now = time.monotonic()
        with self._lock:
            for revision, kept in self.servers.items():
                if revision not in wanted and kept.unwanted_since is None:
                    kept.unwanted_since = now
            drained = [
                r
                for r, s in self.servers.items()
                if r not in wanted
                and s.unwanted_since is not None
                and now - s.unwanted_since >= DRAIN_SECONDS
            ]
            gone = [self.servers.pop(r) for r in drained]
        for server in gone:
            server.stop()
        for revision, (version, uri) in wanted.items():
            with self._lock:
                running = self.servers.get(revision)
            if running is not None and running.process.poll() is None:
                server = running
                server.unwanted_since = None  # scaled up again (undo) before it was stopped
            else:
                if running is not None:
                    running.stop()
                server = self._launch(revision, version, uri)
                with self._lock:
                    self.servers[revision] = server
            if not server.ready and server.answers_ready():
                server.target.write_text(json.dumps([{"targets": [f"127.0.0.1:{server.port}"]}]))
                with self._lock:
                    server.ready = True
            if server.ready:
                self._mark_pods_ready(revision)

    def _launch(self, revision: str, version: str, uri: str) -> Server:
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "modeldeploy_dev.demo.server",
            "--model",
            str(path_for(self.store, uri)),
            "--revision",
            revision,
            "--namespace",
            self.namespace,
            "--port",
            str(port),
        ]
        with (self.logs / f"{revision}.log").open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        with self._lock:
            self.versions[revision] = version
        return Server(revision, version, port, process, self.targets_dir / f"demo-{revision}.json")

    def _mark_pods_ready(self, revision: str) -> None:
        for pod in self.api.list_objects(POD, self.namespace, f"{REVISION_LABEL}={revision}"):
            if (pod["metadata"].get("annotations") or {}).get(UNREADY) == "true":
                patch = {"metadata": {"annotations": {UNREADY: None}}}
                self.api.merge_patch(POD, self.namespace, pod["metadata"]["name"], patch)
