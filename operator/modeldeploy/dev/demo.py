"""`make demo`: the local control plane that the operator and its rollouts run on.

What it shows today: a real control plane started from nothing (etcd,
kube-apiserver, controller-manager, scheduler, kwok, Prometheus on 127.0.0.1)
with its fake nodes and the Gateway API and Istio CRDs. The ModelDeployment
API, the operator and the rollout scenarios join it as they land.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from modeldeploy.dev.cluster import LocalCluster


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(keep: bool) -> int:
    state = Path(tempfile.mkdtemp(prefix="modeldeploy-demo-"))
    cluster = LocalCluster(state, nodes=3)
    say("starting the local control plane (etcd, kube-apiserver, controllers, kwok, Prometheus)")
    cluster.start(log=say)
    say(f"control plane up in {cluster.info['startSeconds']}s; KUBECONFIG={cluster.kubeconfig}")
    try:
        print(cluster.kubectl("get", "nodes").stdout, flush=True)
        print(cluster.kubectl("get", "crd").stdout, flush=True)
        say("done: a real control plane with fake nodes; the ModelDeployment API and operator join next")
        if keep:
            say(f"cluster left running; stop it with: modeldeploy dev down --state-dir {state}")
    finally:
        if not keep:
            cluster.stop()
            say("local control plane stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    return run(parser.parse_args().keep)


if __name__ == "__main__":
    sys.exit(main())
