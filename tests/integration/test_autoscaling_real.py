"""Autoscaling for real: MLServer pods on the real node, metrics-server reading the real kubelet,
the HPA the operator made scaling the revision up under load and back down after it.

Figures (printed, not asserted): seconds from load start to scaled up, and from load end to
scaled back down. The HPA's behavior uses short windows to keep the test short.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from kubetest import Release, apply, operator_values, wait_phase
from modeldeploy_dev.cluster import SERVICE_CIDR, LocalCluster
from modeldeploy_dev.images import model_server_image, operator_image
from modeldeploy_dev.node import POD_PLACEMENT, SUBNET
from modeldeploy_dev.processes import wait_until

COLD_BUILD_TIMEOUT = 1500
LOAD_THREADS = 6


def get(cluster: LocalCluster, *args: str) -> dict[str, Any]:
    document = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    assert isinstance(document, dict)
    return document


class Load:
    """Inference requests in a loop from a few threads, to the ModelDeployment's Service."""

    def __init__(self, url: str) -> None:
        host = ipaddress.ip_address(url.split("/")[2].split(":")[0])
        assert host in SUBNET or host in ipaddress.ip_network(SERVICE_CIDR), url
        self.url = url
        self.stop = threading.Event()
        self.ok = 0
        self.failed = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(LOAD_THREADS)]
        data = [float(i % 16) for _ in range(32) for i in range(64)]
        self.body = json.dumps(
            {"inputs": [{"name": "pixels", "shape": [32, 64], "datatype": "FP64", "data": data}]}
        ).encode()

    def _run(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while not self.stop.is_set():
            request = urllib.request.Request(
                self.url, data=self.body, headers={"Content-Type": "application/json"}
            )
            try:
                with opener.open(request, timeout=10) as response:
                    response.read()
                    good = response.status == 200
            except (urllib.error.URLError, OSError):
                good = False
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_a_revision_scales_up_under_load_and_back_down_after_it(
    real_cluster: LocalCluster, real_namespace: str, tmp_path: Path
) -> None:
    metrics = real_cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes").stdout
    names = [item["metadata"]["name"] for item in json.loads(metrics)["items"]]
    assert names == [real_cluster.real_node_name], names  # the real kubelet only, never a kwok node

    server = model_server_image()
    real_cluster.import_images(server)
    release = Release(real_cluster, real_namespace)
    try:
        release.install(values_file=operator_values(real_cluster, operator_image(), tmp_path))
        manifest = {
            "apiVersion": "modeldeploy.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "digits"},
            "spec": {
                "model": {"name": "digits", "version": "2.0.0", "uri": "s3://models/digits/2.0.0"},
                "replicas": 1,
                "runtime": {
                    "image": server.reference,
                    "port": 8080,
                    "readinessPath": "/v2/health/ready",
                    "resources": {"requests": {"cpu": "50m"}},
                    "podTemplate": {"spec": {**POD_PLACEMENT, "terminationGracePeriodSeconds": 5}},
                },
                "autoscaling": {
                    "minReplicas": 1,
                    "maxReplicas": 3,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {"type": "Utilization", "averageUtilization": 50},
                            },
                        }
                    ],
                    "behavior": {
                        "scaleUp": {
                            "stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 15}],
                        },
                        "scaleDown": {
                            "stabilizationWindowSeconds": 15,
                            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                        },
                    },
                },
            },
        }
        apply(real_cluster, real_namespace, manifest)
        status = wait_phase(real_cluster, real_namespace, "digits", "Stable", timeout=300)
        revision = status["stable"]["revision"]
        hpa = get(real_cluster, "-n", real_namespace, "hpa", revision)
        assert hpa["spec"]["scaleTargetRef"]["name"] == revision

        def replicas() -> int:
            return int(get(real_cluster, "-n", real_namespace, "deployment", revision)["spec"]["replicas"])

        def measured() -> bool:
            current = get(real_cluster, "-n", real_namespace, "hpa", revision).get("status", {})
            return any(
                (m.get("resource") or {}).get("current", {}).get("averageUtilization") is not None
                for m in current.get("currentMetrics") or []
            )

        wait_until("the HPA reads the pods' CPU from metrics-server", measured, 180)
        assert replicas() == 1
        service = get(real_cluster, "-n", real_namespace, "service", "digits")["spec"]["clusterIP"]
        load_started = time.monotonic()
        with Load(f"http://{service}/v2/models/digits/infer") as load:
            wait_until("scaled up under load", lambda: replicas() > 1, 300)
            up = time.monotonic() - load_started
            most = replicas()
            time.sleep(20)
            most = max(most, replicas())
        load_ended = time.monotonic()
        wait_until("scaled back down after the load", lambda: replicas() == 1, 300)
        down = time.monotonic() - load_ended
        print(
            f"\nautoscaling on the real node: load start -> scaled up (to {most}) in {up:.0f}s; "
            f"load end -> back to 1 in {down:.0f}s; requests ok={load.ok} failed={load.failed}"
        )
        # The operator never took the count back: the Deployment's replicas belong to the HPA.
        deployment = get(real_cluster, "-n", real_namespace, "deployment", revision)
        owners = {
            entry["manager"]
            for entry in deployment["metadata"].get("managedFields", [])
            if "f:replicas" in (entry.get("fieldsV1", {}).get("f:spec") or {})
        }
        assert "modeldeploy" not in owners, owners
        assert wait_phase(real_cluster, real_namespace, "digits", "Stable", timeout=30)
    finally:
        release.uninstall()
