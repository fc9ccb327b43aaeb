"""Fixtures of the integration tier beyond the session's (tests/conftest.py)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetest import Release, operator_values
from modeldeploy_dev.cluster import SERVICE_CIDR, LocalCluster
from modeldeploy_dev.images import operator_image
from modeldeploy_dev.metrics import Exporter
from modeldeploy_dev.model_registry import MlflowServer
from modeldeploy_dev.node import SUBNET
from modeldeploy_dev.operator import OperatorProcess

OPERATOR_POD_NAMESPACE = "modeldeploy-system"


@pytest.fixture(name="own_operators")
def own_operators_fixture(
    operator: OperatorProcess, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Stop the session's operator; hand out operators this test may kill; restore it after.

    ``start(*extra_args, kubeconfig=None)`` starts one more operator with the
    session operator's identity and arguments plus ``extra_args``.
    """
    started: list[OperatorProcess] = []

    def start(*extra_args: str, kubeconfig: Path | None = None) -> OperatorProcess:
        process = OperatorProcess(
            kubeconfig or operator.kubeconfig,
            tmp_path / f"operator-{len(started)}.log",
            *operator.extra_args,
            *extra_args,
        )
        started.append(process)
        process.start(timeout=60)
        return process

    operator.stop()
    try:
        yield start
    finally:
        for process in started:
            process.kill()
        operator.start(timeout=60)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server and model registry (SQLite, local artifacts) on 127.0.0.1."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    seconds = server.start()
    print(f"\n[figure] mlflow server started in {seconds:.1f}s")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="exporter")
def exporter_fixture(cluster: Any, prometheus: str) -> Iterator[Exporter]:
    with Exporter(cluster.scrape_targets_dir) as exporter:
        yield exporter


@pytest.fixture(scope="session")
def operator_pod(real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """The operator as users run it: `helm install` of the chart with the image built here, one pod
        on the real node watching every namespace, its analysis on the cluster's Prometheus (which
        listens on the node's bridge IP) and the Service range (warm-ups reach candidates by their
    Service's DNS name): the addresses its egress rules allow."""
    values_file = operator_values(real_cluster, operator_image(), tmp_path_factory.mktemp("operator-pod"))
    prometheus = real_cluster.prometheus_url
    host = prometheus.split("/")[2].split(":")[0]
    assert ipaddress.ip_address(host) in SUBNET, prometheus
    values = yaml.safe_load(values_file.read_text())
    # Prometheus, and the Services warm-ups reach by name (through the node's cluster DNS).
    values |= {"prometheusUrl": prometheus, "egress": {"allow": [f"{host}/32", SERVICE_CIDR]}}
    values_file.write_text(yaml.safe_dump(values))
    real_cluster.kubectl("create", "namespace", OPERATOR_POD_NAMESPACE, check=False)
    release = Release(real_cluster, OPERATOR_POD_NAMESPACE)
    try:
        release.install(values_file=values_file)
        yield release
    finally:
        release.uninstall()
