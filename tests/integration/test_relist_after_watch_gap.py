"""After a watch gap, a list from the real API server replaces the cache's view of the kind."""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any

import pytest
import yaml

from kubetest import apply, fraud, get, wait_for, wait_phase
from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import CONFIG_MAP
from modeldeploy.kube.store import Store
from modeldeploy.reconcile.relist import relist

LABELS = {"app.kubernetes.io/managed-by": "modeldeploy", "modeldeploy.io/name": "fraud"}


def config_map(cluster: Any, namespace: str, name: str) -> None:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": LABELS}}
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(manifest))


def test_a_child_deleted_while_the_cache_was_not_listening_is_dropped_by_the_next_list(
    cluster: Any, namespace: str
) -> None:
    api = KubeClient.from_environment(str(cluster.kubeconfig))
    store = Store()
    for name in ("fraud-fallback", "fraud-warmup"):
        config_map(cluster, namespace, name)
        body = wait_for(name, lambda name=name: api.get(CONFIG_MAP, namespace, name))  # type: ignore[misc]
        store.put({**body, "kind": "ConfigMap"})
    assert len(store.children(namespace, "fraud")) == 2

    cluster.kubectl("-n", namespace, "delete", "configmap", "fraud-warmup")  # the cache never hears of it
    config_map(cluster, namespace, "fraud-extra")  # nor of this one

    assert relist(api, store, CONFIG_MAP, namespace, "fraud") == {(namespace, "fraud")}
    assert sorted(c["metadata"]["name"] for c in store.children(namespace, "fraud")) == [
        "fraud-extra",
        "fraud-fallback",
    ]
    assert relist(api, store, CONFIG_MAP) == set()  # cluster-wide, nothing more went
    assert store.get("ConfigMap", namespace, "fraud-fallback") is not None


def etcd_delete(etcd_url: str, key: str) -> int:
    """Delete one key straight in etcd (its JSON gateway): the API server is not there to tell anyone."""
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    request = urllib.request.Request(f"{etcd_url}/v3/kv/deleterange", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(json.loads(answer.read()).get("deleted", 0))


@pytest.mark.timeout(300)
def test_a_child_deleted_during_a_watch_gap_is_noticed_restored_and_deletion_completes(
    cluster: Any, namespace: str, operator: Any
) -> None:
    """The API server goes away; a child goes with it; the watches resume with 410 Gone and list again."""
    if not getattr(cluster, "local", False):
        pytest.skip("stops the local API server and writes to its etcd")
    fallback = {"mode": "Response", "response": {"status": 200, "body": "{}"}}
    for name in ("fraud", "loan"):
        manifest = fraud("1.0.0", fallback=fallback)
        manifest["metadata"]["name"] = name
        apply(cluster, namespace, manifest)
    for name in ("fraud", "loan"):
        wait_phase(cluster, namespace, name, "Stable", timeout=90)
    assert get(cluster, namespace, "configmap", "fraud-fallback") is not None

    apiserver = cluster.table.get("kube-apiserver")
    cluster.table.stop("kube-apiserver")
    try:
        assert etcd_delete(cluster.info["etcdURL"], f"/registry/configmaps/{namespace}/fraud-fallback") == 1
    finally:
        cluster.table.start("kube-apiserver", apiserver.command)
    wait_for(
        "kube-apiserver /readyz",
        lambda: cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0,
        timeout=120,
        interval=0.5,
    )
    # No DELETED event ever comes for it. Only a list shows it gone; then the operator restores it.
    wait_for(
        "the ConfigMap restored", lambda: get(cluster, namespace, "configmap", "fraud-fallback"), timeout=60
    )

    cluster.kubectl("-n", namespace, "delete", "modeldeployment", "fraud", "--wait=false")
    wait_for(
        "fraud deleted, its finalizer removed",
        lambda: get(cluster, namespace, "modeldeployment", "fraud") is None,
        timeout=60,
    )
