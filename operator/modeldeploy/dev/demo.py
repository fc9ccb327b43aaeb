"""`make demo`: the local control plane, the ModelDeployment API and a model on fake nodes.

What it shows today: a real control plane started from nothing (etcd,
kube-apiserver, controller-manager, scheduler, kwok, Prometheus on 127.0.0.1),
the ModelDeployment CRD installed, and the minimal example applied and read
back through `kubectl get modeldeployments`. The operator and the rollout
scenarios join it as they land (see README, "Status").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from modeldeploy.dev.binaries import REPO_ROOT
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
        crd = REPO_ROOT / "crds" / "modeldeployment.yaml"
        say(f"installing {crd.relative_to(REPO_ROOT)}")
        cluster.kubectl("apply", "--server-side", "-f", str(crd))
        cluster.kubectl("wait", "--for=condition=Established", "crd/modeldeployments.modeldeploy.io")
        example = REPO_ROOT / "examples" / "minimal.yaml"
        say(f"applying {example.relative_to(REPO_ROOT)}")
        cluster.kubectl("apply", "--server-side", "--field-manager=demo", "-f", str(example))
        print(cluster.kubectl("get", "modeldeployments", "-A", "-o", "wide").stdout, flush=True)
        say("done: the API server accepted the ModelDeployment; the operator joins with the reconciler issue")
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
