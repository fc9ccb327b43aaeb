"""The real node's gateway: where it runs, what it may do, and what its clients may dial."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

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


def test_every_route_of_the_listener_retries_through_the_services_cluster_ips() -> None:
    """The failover mechanism (README "Traffic safety") is the gateway's static configuration:
    the entrypoint applies the file provider's Retry middleware, each backendRef is its
    Service's ClusterIP, with a new connection per request."""
    [deployment] = _kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = container["args"]
    assert f"--entryPoints.{gateway.LISTENER}.http.middlewares={gateway.RETRY_MIDDLEWARE}@file" in args
    assert "--providers.kubernetesgateway.nativeLBByDefault=true" in args
    assert "--serversTransport.maxIdleConnsPerHost=-1" in args
    assert f"--providers.file.directory={gateway.DYNAMIC_CONFIG_DIR}" in args
    [mount] = container["volumeMounts"]
    assert mount["mountPath"] == gateway.DYNAMIC_CONFIG_DIR and mount["readOnly"] is True
    [volume] = pod["volumes"]
    [config_map] = _kind("ConfigMap")
    assert volume["name"] == mount["name"]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    [document] = config_map["data"].values()
    retry = yaml.safe_load(document)["http"]["middlewares"][gateway.RETRY_MIDDLEWARE]["retry"]
    assert retry["attempts"] >= 2 and retry["initialInterval"]


def test_traefik_is_built_patched_and_its_cache_follows_the_patch() -> None:
    [traefik] = [c for c in binaries.COMPONENTS if c.name == "traefik"]
    assert [p.name for p in traefik.patches] == ["no-acme-dns-providers.patch", "request-mirror.patch"]
    assert traefik.directory.name.startswith(f"traefik-{binaries.TRAEFIK_VERSION}-")


@pytest.mark.parametrize("address", ["127.0.0.1", "10.244.0.5", "10.0.0.1", "192.168.1.1", "8.8.8.8"])
def test_inference_clients_refuse_addresses_outside_the_real_node(address: str) -> None:
    with pytest.raises(ValueError, match="outside the real node"):
        inference.Client(address)


@pytest.mark.parametrize("address", ["10.250.0.7", "10.96.12.3"])
def test_inference_clients_accept_the_bridge_subnet_and_the_service_range(address: str) -> None:
    inference.Client(address).close()
