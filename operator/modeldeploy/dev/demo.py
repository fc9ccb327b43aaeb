"""`make demo`: the operator carrying a model through a version change on a local control plane.

It starts a real control plane from nothing (etcd, kube-apiserver,
controller-manager, scheduler, kwok fake nodes, Prometheus, all on 127.0.0.1),
installs the ModelDeployment CRD, starts the operator as its own process, and
then, narrating as it goes: deploys version 1.0.0 of a model behind a Gateway
API HTTPRoute, changes it to 1.1.0 (whose pods come up unready, like a model
still loading), shows that traffic stays on 1.0.0 until every 1.1.0 replica is
Ready, and that the old revision is scaled down only after the switch. The
progressive stages (warm-up, shadow, canary, analysis) join it with their issue.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from modeldeploy.dev.binaries import REPO_ROOT
from modeldeploy.dev.cluster import LocalCluster
from modeldeploy.dev.operator import OperatorProcess

NAMESPACE = "demo"
NAME = "fraud"


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def manifest(version: str, unready: bool = False) -> dict[str, Any]:
    runtime: dict[str, Any] = {
        "image": "ghcr.io/acme/fraud-server:1.4",
        "port": 8080,
        "readinessPath": "/v2/health/ready",
    }
    if unready:
        runtime["podTemplate"] = {"metadata": {"annotations": {"kwok.modeldeploy.io/unready": "true"}}}
    return {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "model": {"name": "fraud-detector", "version": version, "uri": f"s3://models/fraud/{version}"},
            "runtime": runtime,
            "replicas": 3,
            "traffic": {
                "router": "gatewayAPI",
                "gatewayAPI": {"parentRefs": [{"name": "public"}], "hostnames": ["fraud.acme.io"]},
            },
        },
    }


class Demo:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.timeline: list[str] = []

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.cluster.kubectl("-n", NAMESPACE, *args, input=input).stdout

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", "mdep", NAME, "-o", "json")).get("status") or {})

    def wait(
        self, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if check(status):
                self.timeline.append(f"{time.strftime('%H:%M:%S')} {what}")
                return status
            time.sleep(0.5)
        raise SystemExit(f"demo failed: {what} did not happen within {timeout}s; status: {self.status()}")

    def show(self) -> None:
        print(self.kubectl("get", "mdep", "-o", "wide"), flush=True)
        print(
            self.kubectl(
                "get", "deployments,services,httproutes", "-l", "app.kubernetes.io/managed-by=modeldeploy"
            ),
            flush=True,
        )

    def selector(self) -> str:
        service = json.loads(self.kubectl("get", "service", NAME, "-o", "json"))
        return str(service["spec"]["selector"]["modeldeploy.io/revision"])

    def run(self) -> None:
        self.cluster.kubectl("create", "namespace", NAMESPACE)
        say("applying fraud-detector 1.0.0 (3 replicas, Gateway API router)")
        self.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest("1.0.0")))
        first = self.wait("1.0.0 Stable", lambda s: s.get("phase") == "Stable")
        say(f"1.0.0 is Stable as revision {first['stable']['revision']}")
        self.show()

        say("applying 1.1.0; its pods start unready, like a model still loading its weights")
        self.kubectl(
            "apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest("1.1.0", unready=True))
        )
        progressing = self.wait("1.1.0 deploying", lambda s: s.get("phase") == "Progressing")
        new = progressing["candidate"]["revision"]
        say(f"candidate {new}: {progressing['message']}")
        time.sleep(3)
        say(f"the stable Service still selects {self.selector()}: no user request reaches 1.1.0")
        pods = json.loads(self.kubectl("get", "pods", "-l", f"modeldeploy.io/revision={new}", "-o", "json"))[
            "items"
        ]
        for pod in pods:
            say(f"pod {pod['metadata']['name']} becomes Ready")
            self.kubectl("annotate", "pod", pod["metadata"]["name"], "kwok.modeldeploy.io/unready-")
            time.sleep(1.5)
            say(f"  status: {self.status().get('phase')}: {self.status().get('message')}")
        stable = self.wait(
            "1.1.0 promoted", lambda s: s.get("phase") == "Stable" and s["stable"]["revision"] == new
        )
        say(f"1.1.0 takes all traffic; the stable Service now selects {self.selector()}")
        old = first["stable"]["revision"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replicas = json.loads(self.kubectl("get", "deployment", old, "-o", "json"))["spec"]["replicas"]
            if replicas == 0:
                break
            time.sleep(0.5)
        say(f"the old revision {old} is scaled to zero, kept for history")
        self.show()
        print("\nHistory:", flush=True)
        for entry in stable["history"]:
            print(
                f"  {entry['at']}  {entry['version']:8} {entry['outcome']:10} {entry['reason']}", flush=True
            )
        print("\nEvents:", flush=True)
        print(
            self.kubectl(
                "get",
                "events",
                "--field-selector",
                "involvedObject.kind=ModelDeployment",
                "--sort-by=.lastTimestamp",
                "-o",
                "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message",
            ),
            flush=True,
        )
        print("Summary:", flush=True)
        for line in self.timeline:
            print(f"  {line}", flush=True)


def run(keep: bool) -> int:
    state = Path(tempfile.mkdtemp(prefix="modeldeploy-demo-"))
    cluster = LocalCluster(state, nodes=3)
    say("starting the local control plane (etcd, kube-apiserver, controllers, kwok, Prometheus)")
    cluster.start(log=say)
    say(f"control plane up in {cluster.info['startSeconds']}s; KUBECONFIG={cluster.kubeconfig}")
    operator: OperatorProcess | None = None
    try:
        crd = REPO_ROOT / "crds" / "modeldeployment.yaml"
        cluster.kubectl("apply", "--server-side", "-f", str(crd))
        cluster.kubectl("wait", "--for=condition=Established", "crd/modeldeployments.modeldeploy.io")
        operator = OperatorProcess(cluster.operator_kubeconfig, state / "operator.log", "--resync", "30")
        operator.start()
        say(f"operator running (log: {operator.log})")
        Demo(cluster).run()
        say("done")
    finally:
        if keep:
            say(f"left running; stop with: modeldeploy dev down --state-dir {state} (and kill the operator)")
        else:
            if operator is not None:
                operator.stop()
            cluster.stop()
            say("operator and local control plane stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--keep", action="store_true", help="leave the cluster and operator running at the end"
    )
    return run(parser.parse_args().keep)


if __name__ == "__main__":
    sys.exit(main())
