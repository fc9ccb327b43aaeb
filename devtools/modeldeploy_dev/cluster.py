"""A real Kubernetes control plane and Prometheus, as local processes on 127.0.0.1.

etcd, kube-apiserver (RBAC and ServiceAccount admission on), kube-controller-
manager, kube-scheduler, and kwok managing a few fake nodes, so Deployments
really produce Ready pods; Gateway API and Istio CRDs installed; Prometheus
scraping whatever targets tests and the demo register. Pod and Service IPs that
kwok hands out are fake and are never dialled: every connection goes to
127.0.0.1.

With the real node, Prometheus also finds pods as it would in a cluster: Kubernetes
service discovery (role pod, as user modeldeploy-prometheus, allowed to get, list
and watch pods) in job ``pods``, relabelled to ``namespace``, ``pod`` and
``revision`` (the ``modeldeploy.io/revision`` pod label). Pods opt in with the usual
annotations ``prometheus.io/scrape: "true"``, ``prometheus.io/port`` and
``prometheus.io/path``. The job keeps only pods on the real node whose address lies
in its bridge subnet: kwok's pods (fake 10.244.0.0/16 IPs) are never scraped.

With ``real_node=True`` (``modeldeploy-dev up --real-node``) one real node runs
beside the kwok nodes (see ``node.py``): kubelet, containerd, a CNI bridge,
kube-proxy and cluster DNS (CoreDNS on the bridge IP, port 53: ``cluster_dns.py``).
The API server then binds the node's bridge IP (10.250.0.1) instead of 127.0.0.1,
so that pods reach it, and adds the Node authorizer for the
kubelet. A real Gateway API implementation (Traefik, ``gateway.py``) then runs
as a pod there, reached through its ClusterIP Service (``gateway_url``).
Nothing else changes for the kwok nodes.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modeldeploy_dev.binaries import Binaries, ensure_binaries, third_party_crd_files
from modeldeploy_dev.node import BRIDGE_IP, NODE_NAME, SUBNET, RealNode
from modeldeploy_dev.pki import Pki, create_pki
from modeldeploy_dev.processes import ProcessTable, http_ok, wait_until

KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")
ISTIO_KINDS = {"VirtualService", "DestinationRule"}
SERVICE_CIDR = "10.96.0.0/16"
SCRAPE_INTERVAL = "1s"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Endpoints:
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int
    prometheus: int

    @classmethod
    def pick(cls) -> Endpoints:
        return cls(**{name: free_port() for name in cls.__dataclass_fields__})


class LocalCluster:
    """One local control plane, living in (and described by) a state directory."""

    def __init__(
        self,
        directory: Path,
        nodes: int = 3,
        audit: bool = False,
        real_node: bool = False,
        controller_manager_qps: int | None = None,
    ) -> None:
        self.directory = directory.resolve()
        self.nodes = nodes
        self.audit = audit
        self.real_node = real_node
        # kube-controller-manager's client limit (its default: 20 QPS, burst 30; burst here: twice it).
        self.controller_manager_qps = controller_manager_qps
        self.node = RealNode(self.directory)
        self.table = ProcessTable(self.directory) if self.directory.exists() else None
        info = self.directory / "cluster.json"
        self.info: dict[str, Any] = json.loads(info.read_text()) if info.exists() else {}

    # --- what tests and the CLI read ---------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def operator_kubeconfig(self) -> Path:
        """Credentials of user modeldeploy-operator (system:masters), for an operator run by hand."""
        return self.directory / "operator.kubeconfig"

    def peer_kubeconfig(self, peer: str) -> Path:
        """Credentials of a benchmark peer (argo-rollouts or flagger; system:masters, a user of its own)."""
        return self.directory / f"{peer}.kubeconfig"

    @property
    def prometheus_url(self) -> str:
        return str(self.info["prometheusURL"])

    @property
    def apiserver_url(self) -> str:
        return str(self.info["apiserverURL"])

    @property
    def scrape_targets_dir(self) -> Path:
        return self.directory / "prometheus" / "targets"

    @property
    def audit_log(self) -> Path:
        return self.directory / "audit.log"

    def kubectl_path(self) -> str:
        return str(self.info["binaries"]["kubectl"])

    @property
    def real_node_name(self) -> str | None:
        """The real node's name, or None when this cluster runs kwok nodes only."""
        return NODE_NAME if self.info.get("realNode") else None

    def helm_path(self) -> str:
        return str(self.info["binaries"]["helm"])

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl_path(), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    # --- start -----------------------------------------------------------------

    def start(self, binaries: Binaries | None = None, log: Any = print) -> None:
        started = time.monotonic()
        binaries = binaries or ensure_binaries(log=log)
        self.directory.mkdir(parents=True, exist_ok=True)
        table = self.table = ProcessTable(self.directory)
        if any(p.alive() for p in table.processes):
            raise RuntimeError(f"a cluster is already running from {self.directory}; stop it first")
        ports = Endpoints.pick()
        host = BRIDGE_IP if self.real_node else "127.0.0.1"
        pki = create_pki(self.directory / "pki", node=(NODE_NAME, BRIDGE_IP) if self.real_node else None)
        self.info = {
            "realNode": self.real_node,
            "apiserverURL": f"https://{host}:{ports.apiserver}",
            # With the real node, Prometheus listens on the bridge IP, as the API server does,
            # so that an operator running as a pod there reaches it.
            "prometheusURL": f"http://{host}:{ports.prometheus}",
            "etcdURL": f"http://127.0.0.1:{ports.etcd}",
            "binaries": {name: str(path) for name, path in binaries.paths.items()},
        }
        try:
            if self.real_node:
                self.node.prepare()
            self._start_etcd(table, binaries, ports)
            self._start_apiserver(table, binaries, ports, pki)
            self._write_kubeconfigs(pki)
            self._start_controllers(table, binaries, ports, pki)
            self._install_third_party_crds()
            self._create_nodes()
            self._start_prometheus(table, binaries, ports, pki)
            if self.real_node:
                self._start_real_node(table, binaries, pki, log)
            self._wait_nodes_ready()
            if self.real_node:
                self._start_metrics_server(table, binaries, pki)
                self._install_gateway(log)
        except BaseException:
            self.stop()
            raise
        self.info["startSeconds"] = round(time.monotonic() - started, 1)
        (self.directory / "cluster.json").write_text(json.dumps(self.info, indent=2))

    def _start_etcd(self, table: ProcessTable, binaries: Binaries, ports: Endpoints) -> None:
        client, peer = f"http://127.0.0.1:{ports.etcd}", f"http://127.0.0.1:{ports.etcd_peer}"
        process = table.start(
            "etcd",
            [
                str(binaries["etcd"]),
                "--name=default",
                f"--data-dir={self.directory / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        wait_until("etcd", lambda: http_ok(f"{client}/health"), 60, process.log)

    def _start_apiserver(self, table: ProcessTable, binaries: Binaries, ports: Endpoints, pki: Pki) -> None:
        host = BRIDGE_IP if self.real_node else "127.0.0.1"
        command = [
            str(binaries["kube-apiserver"]),
            f"--etcd-servers=http://127.0.0.1:{ports.etcd}",
            f"--bind-address={host}",
            f"--advertise-address={host}",
            f"--secure-port={ports.apiserver}",
            f"--cert-dir={self.directory / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--authorization-mode=RBAC",
            "--enable-admission-plugins=ServiceAccount,NamespaceLifecycle,LimitRanger,ResourceQuota",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--profiling=false",
            "--event-ttl=1h",
        ]
        if self.real_node:
            command = [c for c in command if not c.startswith(("--authorization-mode", "--enable-admission"))]
            command += [
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=ServiceAccount,NamespaceLifecycle,LimitRanger,ResourceQuota,"
                "NodeRestriction",
                f"--kubelet-client-certificate={pki.client_cert('apiserver-kubelet-client')}",
                f"--kubelet-client-key={pki.client_key('apiserver-kubelet-client')}",
                f"--kubelet-certificate-authority={pki.ca_cert}",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                # The aggregation layer, for metrics-server (metrics.k8s.io) beside the real node.
                f"--requestheader-client-ca-file={pki.ca_cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki.client_cert('front-proxy-client')}",
                f"--proxy-client-key-file={pki.client_key('front-proxy-client')}",
                "--enable-aggregator-routing=true",
            ]
        if self.audit:
            policy = self.directory / "audit-policy.yaml"
            policy.write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "audit.k8s.io/v1",
                        "kind": "Policy",
                        "omitStages": ["RequestReceived", "ResponseStarted"],
                        "rules": [{"level": "Metadata"}],
                    }
                )
            )
            command += [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
            ]
        process = table.start("kube-apiserver", command)
        admin = (str(pki.client_cert("admin")), str(pki.client_key("admin")))
        wait_until(
            "kube-apiserver",
            lambda: _https_ok(f"https://{host}:{ports.apiserver}/readyz", pki, admin),
            180,
            process.log,
        )

    def _write_kubeconfigs(self, pki: Pki) -> None:
        for who, path in (
            ("admin", self.kubeconfig),
            ("controller-manager", self.directory / "controller-manager.kubeconfig"),
            ("scheduler", self.directory / "scheduler.kubeconfig"),
            ("kwok", self.directory / "kwok.kubeconfig"),
            ("operator", self.operator_kubeconfig),
            ("argo-rollouts", self.peer_kubeconfig("argo-rollouts")),
            ("flagger", self.peer_kubeconfig("flagger")),
        ):
            path.write_text(yaml.safe_dump(_kubeconfig(self.apiserver_url, pki, who)))
            path.chmod(0o600)

    def _start_controllers(self, table: ProcessTable, binaries: Binaries, ports: Endpoints, pki: Pki) -> None:
        cm_config = str(self.directory / "controller-manager.kubeconfig")
        table.start(
            "kube-controller-manager",
            [
                str(binaries["kube-controller-manager"]),
                f"--kubeconfig={cm_config}",
                f"--authentication-kubeconfig={cm_config}",
                f"--authorization-kubeconfig={cm_config}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.controller_manager}",
                "--leader-elect=false",
                f"--service-account-private-key-file={pki.service_account_key}",
                f"--root-ca-file={pki.ca_cert}",
                "--use-service-account-credentials=true",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.directory / 'ca.key'}",
                "--controllers=*,-nodeipam,-bootstrapsigner,-tokencleaner",
                *(
                    [
                        f"--kube-api-qps={self.controller_manager_qps}",
                        f"--kube-api-burst={2 * self.controller_manager_qps}",
                    ]
                    if self.controller_manager_qps
                    else []
                ),
            ],
        )
        scheduler_config = str(self.directory / "scheduler.kubeconfig")
        table.start(
            "kube-scheduler",
            [
                str(binaries["kube-scheduler"]),
                f"--kubeconfig={scheduler_config}",
                f"--authentication-kubeconfig={scheduler_config}",
                f"--authorization-kubeconfig={scheduler_config}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports.scheduler}",
                "--leader-elect=false",
            ],
        )
        table.start(
            "kwok",
            [
                str(binaries["kwok"]),
                f"--kubeconfig={self.directory / 'kwok.kubeconfig'}",
                f"--config={KWOK_STAGES}",
                # Only the fake nodes: the real node's kubelet reports for itself.
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-lease-duration-seconds=40",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.240.0.1",
                f"--server-address=127.0.0.1:{ports.kwok}",
            ],
        )

    def _install_third_party_crds(self) -> None:
        documents: list[dict[str, Any]] = []
        for path in third_party_crd_files():
            for document in yaml.safe_load_all(path.read_text()):
                if not document or document.get("kind") != "CustomResourceDefinition":
                    continue
                group = document["spec"]["group"]
                if group.endswith("istio.io") and document["spec"]["names"]["kind"] not in ISTIO_KINDS:
                    continue
                documents.append(document)
        manifest = yaml.safe_dump_all(documents)
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=modeldeploy-dev",
            "-f",
            "-",
            input=manifest,
            timeout=120,
        )
        self.wait_established(*(f"crd/{d['metadata']['name']}" for d in documents))

    def wait_established(self, *crds: str, timeout: float = 300) -> None:
        """Until every CRD named (``crd/<name>``) is Established.

        Not ``kubectl wait --for=condition=Established``: while a new CRD's status has no
        conditions yet, it fails at once (".status.conditions accessor error") instead of waiting."""

        def established(crd: str) -> bool:
            found = self.kubectl(
                "get",
                crd,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Established')].status}",
                check=False,
            )
            return found.stdout.strip() == "True"

        wait_until(f"{', '.join(crds)} Established", lambda: all(established(crd) for crd in crds), timeout)

    def _create_nodes(self) -> None:
        nodes = [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": f"kwok-node-{i}",
                    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": f"kwok-node-{i}",
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "500"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "500"},
                },
            }
            for i in range(self.nodes)
        ]
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(nodes))

    def _start_real_node(self, table: ProcessTable, binaries: Binaries, pki: Pki, log: Any) -> None:
        from modeldeploy_dev.images import import_into_containerd, pause_image

        started = time.monotonic()
        pause = pause_image(log=log)
        ports = {
            name: free_port()
            for name in (
                "kubelet",
                "kubelet_healthz",
                "kube_proxy_healthz",
                "kube_proxy_metrics",
                "coredns_health",
                "coredns_ready",
            )
        }
        self.node.start(
            table,
            binaries,
            self.apiserver_url,
            pki,
            ports,
            lambda socket: import_into_containerd(socket, [pause], log=log),
            self.kubectl,
        )
        self.info["realNodeSeconds"] = round(time.monotonic() - started, 1)

    def _start_metrics_server(self, table: ProcessTable, binaries: Binaries, pki: Pki) -> None:
        from modeldeploy_dev.metrics_server import start_metrics_server

        started = time.monotonic()
        start_metrics_server(
            table,
            binaries["metrics-server"],
            self.directory,
            self.kubeconfig,
            pki.ca_cert,
            free_port(),
            self.kubectl,
        )
        self.info["metricsServerSeconds"] = round(time.monotonic() - started, 1)

    def _install_gateway(self, log: Any) -> None:
        from modeldeploy_dev.gateway import install_gateway

        started = time.monotonic()
        self.info["gatewayAddress"] = install_gateway(self.kubectl, self.import_images, log)
        self.info["gatewaySeconds"] = round(time.monotonic() - started, 1)

    @property
    def gateway_url(self) -> str:
        """The real node's Gateway API gateway (Traefik), through its ClusterIP Service."""
        address = self.info.get("gatewayAddress")
        if not address:
            raise RuntimeError("this cluster has no gateway: it runs only with the real node")
        return f"http://{address}"

    def import_images(self, *images: Any, log: Any = print) -> None:
        """Load built images (images.Image) into the real node's containerd."""
        from modeldeploy_dev.images import import_into_containerd

        import_into_containerd(self.node.containerd_socket, images, log=log)

    def _wait_nodes_ready(self) -> None:
        table = self.table
        assert table is not None
        wait_until(
            f"{self.nodes} kwok nodes" + (" and the real node" if self.real_node else ""),
            lambda: (
                self.kubectl(
                    "wait", "--for=condition=Ready", "node", "--all", "--timeout=5s", check=False
                ).returncode
                == 0
            ),
            60,
            table.get("kwok").log,
        )
        # Pods need the default ServiceAccount (made by the controller manager).
        wait_until(
            "the default ServiceAccount",
            lambda: self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
            60,
            table.get("kube-controller-manager").log,
        )

    def _start_prometheus(self, table: ProcessTable, binaries: Binaries, ports: Endpoints, pki: Pki) -> None:
        home = self.directory / "prometheus"
        self.scrape_targets_dir.mkdir(parents=True, exist_ok=True)
        jobs: list[dict[str, Any]] = [
            {
                "job_name": "local",
                "file_sd_configs": [
                    {"files": [str(self.scrape_targets_dir / "*.json")], "refresh_interval": "1s"}
                ],
            }
        ]
        if self.real_node:
            kubeconfig = home / "kubeconfig"
            kubeconfig.write_text(yaml.safe_dump(_kubeconfig(self.apiserver_url, pki, "prometheus")))
            kubeconfig.chmod(0o600)
            self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(PROMETHEUS_RBAC))
            jobs.append(real_node_pod_job(kubeconfig))
        config = home / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": SCRAPE_INTERVAL,
                        "evaluation_interval": SCRAPE_INTERVAL,
                        "scrape_timeout": SCRAPE_INTERVAL,
                    },
                    "scrape_configs": jobs,
                }
            )
        )
        process = table.start(
            "prometheus",
            [
                str(binaries["prometheus"]),
                f"--config.file={config}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address={self.prometheus_url.removeprefix('http://')}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
        )
        wait_until("prometheus", lambda: http_ok(f"{self.prometheus_url}/-/ready"), 60, process.log)

    # --- stop ------------------------------------------------------------------

    def stop(self) -> None:
        table = self.table or (ProcessTable(self.directory) if self.directory.exists() else None)
        kube_proxy = self.info.get("binaries", {}).get("kube-proxy")
        self.node.teardown(table, kube_proxy)
        if table is not None:
            table.stop_all()

    def restart(self, component: str) -> None:
        """Stop one component and start it again with the same command (reliability tests)."""
        assert self.table is not None
        self.table.restart(component)

    def running(self) -> dict[str, bool]:
        table = self.table or ProcessTable(self.directory)
        return {p.name: p.alive() for p in table.processes}


PROMETHEUS_USER = "modeldeploy-prometheus"
PROMETHEUS_RBAC: list[dict[str, Any]] = [
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "modeldeploy-dev:prometheus"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "modeldeploy-dev:prometheus"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "modeldeploy-dev:prometheus",
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": PROMETHEUS_USER}],
    },
]


def real_node_pod_job(kubeconfig: Path) -> dict[str, Any]:
    """Scrape job ``pods``: pods found by Kubernetes SD, kept only on the real node and its subnet.

    The field selector asks the API server for the real node's pods only; the relabelling
    keeps a target only when its node, its pod IP and its final address all lie on the
    real node, so no kwok pod (fake IP) or any other address is ever dialled.
    """
    # SUBNET is a /24: 10.250.0.0/24 -> 10\.250\.0\.[0-9]+ (Prometheus anchors the regex).
    in_subnet = re.escape(str(SUBNET.network_address).rsplit(".", 1)[0]) + r"\.[0-9]+"
    return {
        "job_name": "pods",
        "kubernetes_sd_configs": [
            {
                "role": "pod",
                "kubeconfig_file": str(kubeconfig),
                "selectors": [{"role": "pod", "field": f"spec.nodeName={NODE_NAME}"}],
            }
        ],
        "relabel_configs": [
            {"action": "keep", "source_labels": ["__meta_kubernetes_pod_node_name"], "regex": NODE_NAME},
            {"action": "keep", "source_labels": ["__meta_kubernetes_pod_ip"], "regex": in_subnet},
            {"action": "keep", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Running"},
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                "regex": "true",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
                "regex": "(.+)",
                "target_label": "__metrics_path__",
            },
            {
                "source_labels": [
                    "__meta_kubernetes_pod_ip",
                    "__meta_kubernetes_pod_annotation_prometheus_io_port",
                ],
                "regex": "(.+);([0-9]+)",
                "replacement": "$1:$2",
                "target_label": "__address__",
            },
            {"action": "keep", "source_labels": ["__address__"], "regex": in_subnet + ":[0-9]+"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {
                "source_labels": ["__meta_kubernetes_pod_label_modeldeploy_io_revision"],
                "target_label": "revision",
            },
        ],
    }


def _kubeconfig(server: str, pki: Pki, who: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "modeldeploy-local",
                "cluster": {"server": server, "certificate-authority": str(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": who,
                "user": {
                    "client-certificate": str(pki.client_cert(who)),
                    "client-key": str(pki.client_key(who)),
                },
            }
        ],
        "contexts": [{"name": "modeldeploy-local", "context": {"cluster": "modeldeploy-local", "user": who}}],
        "current-context": "modeldeploy-local",
    }


def _https_ok(url: str, pki: Pki, client: tuple[str, str]) -> bool:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(*client)
    with urllib.request.urlopen(url, timeout=2, context=context) as response:
        return bool(response.status == 200)


def environment(cluster: LocalCluster) -> dict[str, str]:
    """Environment variables that point clients at the cluster."""
    return {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
