"""The real node's gateway: where it runs, what it may do, and what its clients may dial."""

from __future__ import annotations

from typing import Any

import pytest

from modeldeploy_dev import binaries, gateway, inference
from modeldeploy_dev.node import POD_PLACEMENT


def _kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in gateway.manifests("localhost/modeldeploy/gateway:abc") if d["kind"] == kind]


def test_the_gateway_runs_on_the_real_node_as_a_non_root_pod_with_a_read_only_root() -> None:
    [deployment] = _kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == POD_PLACEMENT["nodeSelector"]
    assert pod["tolerations"] == POD_PLACEMENT["tolerations"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["imagePullPolicy"] == "Never"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "--global.checkNewVersion=false" in container["args"]
    assert "--global.sendAnonymousUsage=false" in container["args"]


def test_the_gateway_may_only_read_and_write_route_and_gateway_status() -> None:
    [role] = _kind("ClusterRole")
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert verbs == {"get", "list", "watch", "update"}
    updated = {r for rule in role["rules"] if "update" in rule["verbs"] for r in rule["resources"]}
    assert all(resource.endswith("/status") for resource in updated), updated


def test_the_gateway_listener_takes_routes_from_every_namespace_and_the_parent_ref_names_it() -> None:
    [gw] = _kind("Gateway")
    [listener] = gw["spec"]["listeners"]
    assert listener["name"] == gateway.PARENT_REF["sectionName"]
    assert listener["allowedRoutes"] == {"namespaces": {"from": "All"}}
    assert (gw["metadata"]["namespace"], gw["metadata"]["name"]) == (
        gateway.PARENT_REF["namespace"],
        gateway.PARENT_REF["name"],
    )
    [gateway_class] = _kind("GatewayClass")
    assert gateway_class["spec"]["controllerName"] == gateway.CONTROLLER_NAME


def test_traefik_is_built_patched_and_its_cache_follows_the_patch() -> None:
    [traefik] = [c for c in binaries.COMPONENTS if c.name == "traefik"]
    assert [p.name for p in traefik.patches] == ["request-mirror.patch"]
    assert traefik.directory.name.startswith(f"traefik-{binaries.TRAEFIK_VERSION}-")


@pytest.mark.parametrize("address", ["127.0.0.1", "10.244.0.5", "10.0.0.1", "192.168.1.1", "8.8.8.8"])
def test_inference_clients_refuse_addresses_outside_the_real_node(address: str) -> None:
    with pytest.raises(ValueError, match="outside the real node"):
        inference.Client(address)


@pytest.mark.parametrize("address", ["10.250.0.7", "10.96.12.3"])
def test_inference_clients_accept_the_bridge_subnet_and_the_service_range(address: str) -> None:
    inference.Client(address).close()
