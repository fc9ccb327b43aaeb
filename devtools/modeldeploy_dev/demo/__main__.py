"""Entry point of ``python -m modeldeploy_dev.demo``: start everything, run the scenarios, stop everything."""

from __future__ import annotations

import argparse
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
from modeldeploy_dev.demo.fleet import Fleet
from modeldeploy_dev.demo.load import Load
from modeldeploy_dev.demo.manifests import DEFAULT, FAST, NAME, NAMESPACE
from modeldeploy_dev.demo.models import train_all
from modeldeploy_dev.demo.proxy import Proxy
from modeldeploy_dev.demo.scenario import Scenarios
from modeldeploy_dev.demo.view import summary
from modeldeploy_dev.operator import OperatorProcess


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up exactly like Ctrl-C


def run(fast: bool, keep: bool) -> int:
    timings = FAST if fast else DEFAULT
    started = time.monotonic()
    state = Path(tempfile.mkdtemp(prefix="modeldeploy-demo-"))
    with ExitStack() as cleanup:
        cluster = LocalCluster(state, nodes=3)
        say("starting the local control plane (etcd, kube-apiserver, controllers, kwok, Prometheus)")
        cluster.start(log=say)
        if keep:
            say(f"--keep: the control plane stays up; stop it with: modeldeploy-dev down --state-dir {state}")
        else:
            cleanup.callback(say, "local control plane stopped")
            cleanup.callback(cluster.stop)
        say(f"control plane up in {cluster.info['startSeconds']}s; KUBECONFIG={cluster.kubeconfig}")

        say("training the models on sklearn's load_digits (no download)")
        held_out, accuracies = train_all(state / "models")
        say("held-out accuracy: " + ", ".join(f"{v} {a:.3f}" for v, a in accuracies.items()))

        api = KubeClient.from_environment(str(cluster.kubeconfig))
        fleet = Fleet(api, NAMESPACE, state / "models", cluster.scrape_targets_dir, state / "servers")
        fleet.start()
        cleanup.callback(fleet.stop)
        proxy = Proxy(api, NAMESPACE, NAME, fleet.port_of)
        proxy.start()
        cleanup.callback(proxy.stop)
        say(f"local proxy on {proxy.url} follows HTTPRoute {NAMESPACE}/{NAME} (a stand-in for a gateway)")

        cluster.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds" / "modeldeployment.yaml"))
        cluster.kubectl("wait", "--for=condition=Established", "crd/modeldeployments.modeldeploy.io")
        operator = OperatorProcess(
            cluster.operator_kubeconfig,
            state / "operator.log",
            "--resync",
            "30",
            "--prometheus-url",
            cluster.prometheus_url,
            "--service-url-template",
            proxy.service_url_template,
        )
        operator.start()
        cleanup.callback(operator.stop)
        say(f"operator running (log: {operator.log})")

        budget = 300.0 if fast else 600.0
        load = Load(proxy.port, held_out, timings.rate, int(timings.rate * budget), budget)
        cleanup.callback(load.stop)
        scenarios = Scenarios(
            cluster, api, timings, proxy, fleet, held_out, accuracies, say, timeout=budget / 2
        )
        scenarios.first_version(load)
        for scenario in scenarios.scenarios:
            scenarios.run(scenario)
        load.stop()

        tally = load.snapshot()
        answered: dict[str, int] = {}
        correct: dict[str, int] = {}
        for revision, count in tally.answered.items():
            version = fleet.version_of(revision) or revision
            answered[version] = answered.get(version, 0) + count
            correct[version] = correct.get(version, 0) + tally.correct[revision]
        lines = summary(
            scenarios.scenarios,
            accuracies,
            answered,
            correct,
            tally.sent,
            tally.errors,
            time.monotonic() - started,
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
