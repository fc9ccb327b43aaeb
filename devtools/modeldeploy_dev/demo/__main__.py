"""Entry point of ``python -m modeldeploy_dev.demo``: start everything, run the scenarios, stop everything."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from modeldeploy.kube.client import KubeClient
from modeldeploy_dev.binaries import REPO_ROOT
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.demo.load import Load
from modeldeploy_dev.demo.manifests import DEFAULT, FAST, HOSTNAME, NAMESPACE
from modeldeploy_dev.demo.registry import ALIAS, MODEL, PROMOTION_ALIAS, PROVIDER, register_digits
from modeldeploy_dev.demo.scenario import Scenarios
from modeldeploy_dev.demo.servers import Servers
from modeldeploy_dev.demo.view import summary
from modeldeploy_dev.gateway import NAME as GATEWAY
from modeldeploy_dev.gateway import NAMESPACE as GATEWAY_NAMESPACE
from modeldeploy_dev.images import model_server_image
from modeldeploy_dev.model_registry import MlflowServer
from modeldeploy_dev.node import BRIDGE_IP
from modeldeploy_dev.operator import OperatorProcess
from modeldeploy_dev.processes import wait_until


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up exactly like Ctrl-C


def _install_crd(cluster: LocalCluster) -> bool:
    """Apply the CRD and say whether it is Established, reading the API without discovery
    (kubectl's discovery fails while an aggregated API, such as metrics.k8s.io, is briefly
    unavailable); retried by the caller."""
    cluster.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds" / "modeldeployment.yaml"))
    crd = json.loads(
        cluster.kubectl(
            "get",
            "--raw",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/modeldeployments.modeldeploy.io",
        ).stdout
    )
    conditions = crd.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def run(fast: bool, keep: bool) -> int:
    timings = FAST if fast else DEFAULT
    started = time.monotonic()
    state = Path(tempfile.mkdtemp(prefix="modeldeploy-demo-"))
    with ExitStack() as cleanup:
        image = model_server_image(log=say)
        cluster = LocalCluster(state, nodes=2, real_node=True)
        say(
            "starting the local control plane (etcd, kube-apiserver, controllers, kwok, Prometheus), "
            "its real node (kubelet, containerd, kube-proxy) and the gateway (Traefik) on it"
        )
        try:
            cluster.start(log=say)
        finally:
            if keep:
                say(f"--keep: the cluster stays up; stop it with: modeldeploy-dev down --state-dir {state}")
            else:
                cleanup.callback(say, "local cluster and its real node stopped")
                cleanup.callback(cluster.stop)
        say(
            f"cluster up in {cluster.info['startSeconds']}s (gateway {cluster.gateway_url}); "
            f"KUBECONFIG={cluster.kubeconfig}"
        )
        cluster.import_images(image, log=say)

        # The registry listens on the node's bridge address: the model pods fetch their models from
        # it, and the operator (a host process) reads aliases and writes outcomes there.
        registry = MlflowServer(state / "mlflow", host=BRIDGE_IP, serve_artifacts=True)
        say(f"starting an MLflow registry (mlflow server, SQLite) at {registry.url}")
        registry.start()
        cleanup.callback(registry.stop)
        say(f"MLflow up in {registry.started_in:.1f}s; training the three digits models and registering them")
        began = time.monotonic()
        registered = register_digits(registry)
        held_out, accuracies = registered.held_out, registered.accuracies
        say(
            f"registered {MODEL} versions in {time.monotonic() - began:.1f}s, held-out accuracy: "
            + ", ".join(f"version {v} {a:.3f}" for v, a in accuracies.items())
        )

        api = KubeClient.from_environment(str(cluster.kubeconfig))
        servers = Servers(api, NAMESPACE, cluster.scrape_targets_dir)
        cleanup.callback(servers.stop)

        wait_until(
            "the ModelDeployment CRD applied and Established", lambda: _install_crd(cluster), 90, interval=1
        )
        config = state / "operator-config.yaml"
        config.write_text(
            json.dumps(
                {
                    "clusterName": "modeldeploy-demo",
                    "registryProviders": [
                        {
                            "name": PROVIDER,
                            "address": registry.url,
                            "namespaces": [NAMESPACE],
                            "pollInterval": "2s",
                            "promotionAlias": PROMOTION_ALIAS,
                        }
                    ],
                }
            )
        )
        operator = OperatorProcess(
            cluster.operator_kubeconfig,
            state / "operator.log",
            "--config",
            str(config),
            "--resync",
            "30",
            "--prometheus-url",
            cluster.prometheus_url,
            # With the real node, Prometheus listens on the node's bridge address (pods reach
            # it there), which the operator's egress rules refuse unless the admin lists it.
            "--egress-allow",
            f"{BRIDGE_IP}/32",
        )
        operator.start()
        cleanup.callback(operator.stop)
        say(f"operator running (log: {operator.log})")

        budget = 600.0 if fast else 900.0
        address = cluster.gateway_url.removeprefix("http://")
        load = Load(address, HOSTNAME, held_out, timings.rate, int(timings.rate * budget), budget)
        cleanup.callback(load.stop)
        say(f"users' requests go to the gateway {GATEWAY_NAMESPACE}/{GATEWAY} at {address}, Host {HOSTNAME}")
        scenarios = Scenarios(
            cluster,
            api,
            timings,
            image.reference,
            servers,
            load,
            registry,
            registered.versions,
            say,
            timeout=budget / 2,
        )
        scenarios.first_version()
        servers.start()
        scenarios.wait_for_first_answers()
        for scenario in scenarios.scenarios:
            scenarios.run(scenario)
        load.stop()
        servers.poll()

        tally = load.snapshot()
        counted = {
            version: (int(c.success), int(c.failure), c.correct / c.labelled if c.labelled else None)
            for version, c in servers.by_version().items()
        }
        lines = summary(
            scenarios.scenarios,
            accuracies,
            tally.answered,
            tally.correct,
            tally.sent,
            tally.errors,
            time.monotonic() - started,
            counted,
            tally.failures,
            models=f"MLflow registry versions of {MODEL}, each rolled out by moving @{ALIAS}",
        )
        print("\n".join(lines), flush=True)
        say(f"state and logs: {state}")
        return 0 if all(s.as_expected for s in scenarios.scenarios) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modeldeploy_dev.demo",
        description="Show a model rollout end to end on a local control plane: "
        "a better model promoted, a worse one rolled back by its accuracy.",
    )
    parser.add_argument("--fast", action="store_true", help="short stages (analysis every 5s), as CI runs it")
    parser.add_argument("--keep", action="store_true", help="leave the control plane running at the end")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(args.fast, args.keep)
    except KeyboardInterrupt:
        say("interrupted; everything it started has been stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
