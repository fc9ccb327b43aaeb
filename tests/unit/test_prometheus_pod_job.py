"""The local Prometheus's pod job: a config the pinned Prometheus accepts, that keeps only the real node.

Prometheus anchors every relabel regex (RE2, ``^(?:...)$``); Python's ``re.fullmatch``
reads these simple patterns the same way.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modeldeploy_dev.binaries import find_existing
from modeldeploy_dev.cluster import real_node_pod_job
from modeldeploy_dev.node import NODE_NAME


def keep_regex(job: dict[str, Any], source: str) -> str:
    [rule] = [
        r for r in job["relabel_configs"] if r.get("action") == "keep" and r["source_labels"] == [source]
    ]
    return str(rule["regex"])


def test_only_the_real_node_and_its_bridge_subnet_are_kept(tmp_path: Path) -> None:
    job = real_node_pod_job(tmp_path / "kubeconfig")
    [sd] = job["kubernetes_sd_configs"]
    assert sd["role"] == "pod" and sd["selectors"] == [{"role": "pod", "field": f"spec.nodeName={NODE_NAME}"}]
    assert re.fullmatch(keep_regex(job, "__meta_kubernetes_pod_node_name"), NODE_NAME)
    assert not re.fullmatch(keep_regex(job, "__meta_kubernetes_pod_node_name"), "kwok-node-0")
    ip = keep_regex(job, "__meta_kubernetes_pod_ip")
    address = keep_regex(job, "__address__")
    for kept in ("10.250.0.7", "10.250.0.254"):
        assert re.fullmatch(ip, kept) and re.fullmatch(address, f"{kept}:8082")
    for dropped in ("10.244.0.7", "10.250.1.7", "110.250.0.7", "10.25000.7", "127.0.0.1", "10.250.0.7.1"):
        assert not re.fullmatch(ip, dropped), dropped
        assert not re.fullmatch(address, f"{dropped}:8082"), dropped
    assert not re.fullmatch(address, "10.250.0.7"), "an address without a port is not kept"
    # Only pods that ask to be scraped.
    assert keep_regex(job, "__meta_kubernetes_pod_annotation_prometheus_io_scrape") == "true"


def test_the_pinned_prometheus_accepts_the_config(tmp_path: Path) -> None:
    promtool = find_existing("promtool")
    if promtool is None:
        pytest.skip("promtool comes with the pinned Prometheus: run `make binaries`")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://10.250.0.1:6443"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [real_node_pod_job(kubeconfig)]}))
    result = subprocess.run(
        [str(promtool), "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
