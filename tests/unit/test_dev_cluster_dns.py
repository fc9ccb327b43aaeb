"""The real node's cluster DNS: where CoreDNS listens, what it may read, and what it is built with."""

from __future__ import annotations

import re
from pathlib import Path

from modeldeploy_dev import binaries, cluster_dns

WRAPPER = binaries.GO_WRAPPERS / "coredns"


def _corefile() -> str:
    return cluster_dns.corefile("10.250.0.1", Path("/state/coredns/kubeconfig"), 1053, 1054)


def _plugins(corefile: str) -> list[str]:
    """The directives of the server block (its top-level lines)."""
    body = corefile.split("{", 1)[1]
    return [
        line.split()[0]
        for line in body.splitlines()
        if line.startswith("    ") and not line.startswith("     ") and line.strip() != "}"
    ]


def test_coredns_listens_on_the_given_address_only_and_reports_health_on_loopback() -> None:
    corefile = _corefile()
    assert corefile.splitlines()[0] == "cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {"
    assert "    bind 10.250.0.1\n" in corefile
    assert "    health 127.0.0.1:1053\n" in corefile
    assert "    ready 127.0.0.1:1054\n" in corefile
    assert "kubeconfig /state/coredns/kubeconfig" in corefile


def test_coredns_serves_only_the_cluster_zones_and_forwards_nothing() -> None:
    corefile = _corefile()
    # One server block, for the cluster's zones only: any other name is refused.
    assert corefile.count("{") - corefile.count("kubernetes ") == 1
    assert "." not in corefile.splitlines()[0].replace(".local", "").replace(".arpa", "")
    assert not {"forward", "proxy", "grpc", "etcd", "file", "hosts"} & set(_plugins(corefile))


def test_every_plugin_the_corefile_uses_is_built_in_and_in_plugin_cfg_order() -> None:
    main = (WRAPPER / "main.go").read_text()
    imported = set(re.findall(r'_ "github.com/coredns/coredns/plugin/(\w+)"', main))
    [listed] = re.findall(r"var directives = \[\]string\{([^}]*)\}", main)
    directives = re.findall(r'"(\w+)"', listed)
    assert set(directives) == imported
    # CoreDNS v1.15.0's plugin.cfg order (core/dnsserver/zdirectives.go) for these plugins.
    assert directives == ["bind", "ready", "health", "errors", "log", "cache", "kubernetes"]
    assert set(_plugins(_corefile())) <= set(directives)


def test_coredns_may_only_list_and_watch_services_endpointslices_and_namespaces() -> None:
    [role] = [d for d in cluster_dns.RBAC if d["kind"] == "ClusterRole"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        (group, resource, verb)
        for group, resource in (("", "services"), ("", "namespaces"), ("discovery.k8s.io", "endpointslices"))
        for verb in ("list", "watch")
    }
    [binding] = [d for d in cluster_dns.RBAC if d["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": cluster_dns.USER}
    ]


def test_coredns_is_built_from_its_pinned_module() -> None:
    [coredns] = [c for c in binaries.COMPONENTS if c.name == "coredns"]
    assert coredns.version == binaries.COREDNS_VERSION
    assert f"github.com/coredns/coredns {binaries.COREDNS_VERSION}" in (WRAPPER / "go.mod").read_text()
    assert coredns.directory.name == f"coredns-{binaries.COREDNS_VERSION}"
