"""After a watch gap, a list from the real API server replaces the cache's view of the kind."""

from __future__ import annotations

from typing import Any

import yaml

from kubetest import wait_for
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
