"""One real node beside the kwok nodes: containerd + runc, a CNI bridge, kubelet, kube-proxy,
and cluster DNS (CoreDNS, ``cluster_dns.py``).

Pods on it are real processes from real images (imported into containerd, never
pulled). The node is tainted ``modeldeploy.io/real-node=true:NoSchedule`` and
labelled ``modeldeploy.io/node=real``: only a pod that tolerates the taint runs
here (and one that also selects the label runs nowhere else), so scale tests and
benchmarks, which neither tolerate nor select it, stay on the kwok nodes.

Addresses: the node's bridge ``mdnode0`` is 10.250.0.1/24 and its pods take
addresses from that subnet, apart from kwok's fake pod range (10.244.0.0/16)
and fake node IP (10.240.0.1). The API server then binds the bridge IP instead
of 127.0.0.1 (pods reach it through the ``kubernetes`` Service), and so does the
kubelet, and CoreDNS (port 53, UDP and TCP), the cluster DNS every pod's
resolv.conf names; every other port stays on 127.0.0.1. Pods get no route out:
no masquerading, and a DNS that answers only the cluster's own names (pods with
``dnsPolicy: Default`` get a resolv.conf naming only their own loopback).

Only one real node can run on a machine at a time (the bridge, the /kubepods
cgroups and the host's iptables are shared); a second one fails at once, or
waits for the first with ``MODELDEPLOY_REAL_NODE_WAIT`` seconds set. ``teardown`` removes everything the
node added: processes, mounts, network namespaces, iptables chains, the bridge,
cgroups, and the kernel settings kubelet and the CNI plugin changed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from modeldeploy_dev import cluster_dns
from modeldeploy_dev.images import PAUSE_IMAGE
from modeldeploy_dev.pki import Pki
from modeldeploy_dev.processes import ProcessTable, http_ok, pid_alive, wait_until

NODE_NAME = "real-node"
BRIDGE = "mdnode0"
SUBNET = ipaddress.ip_network("10.250.0.0/24")
BRIDGE_IP = "10.250.0.1"
NODE_LABEL = ("modeldeploy.io/node", "real")
TAINT = {"key": "modeldeploy.io/real-node", "value": "true", "effect": "NoSchedule"}
CNI_BIN_DIR = Path("/usr/lib/cni")
NETNS_DIR = Path("/var/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"
# Kernel settings kubelet (overcommit, panic) and the CNI bridge plugin (forwarding) change.
SYSCTLS = (
    "vm.overcommit_memory",
    "kernel.panic",
    "kernel.panic_on_oops",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
)
IPTABLES = ("iptables", "ip6tables")
# containerd plugins the node does not use (and one that would create /opt/containerd).
DISABLED_PLUGINS = [
    "io.containerd.internal.v1.opt",
    *(f"io.containerd.snapshotter.v1.{name}" for name in ("aufs", "btrfs", "zfs", "devmapper")),
    "io.containerd.tracing.processor.v1.otlp",
]
TABLES = ("filter", "nat", "mangle", "raw")

# What pods need to run on the real node.
POD_PLACEMENT: dict[str, Any] = {
    "nodeSelector": {NODE_LABEL[0]: NODE_LABEL[1]},
    "tolerations": [
        {"key": TAINT["key"], "operator": "Equal", "value": TAINT["value"], "effect": TAINT["effect"]}
    ],
}


class RealNodeError(RuntimeError):
    """The machine cannot run the real node; the message says why and what to do."""


def check_host() -> None:
    """Fail early, naming the fix, when the host lacks what the real node needs."""
    if os.geteuid() != 0:
        raise RealNodeError("the real node needs root (containerd, bridges, iptables)")
    needed = {
        "containerd": shutil.which("containerd"),
        "runc": shutil.which("runc"),
        "ctr": shutil.which("ctr"),
        "iptables": shutil.which("iptables"),
        "ip": shutil.which("ip"),
        "bridge CNI plugin": str(CNI_BIN_DIR / "bridge") if (CNI_BIN_DIR / "bridge").exists() else None,
    }
    missing = [name for name, path in needed.items() if not path]
    if missing:
        raise RealNodeError(f"missing {', '.join(missing)}: run `make node-deps` (as root)")


def _node_busy() -> str | None:
    """Why another real node holds this machine, or None when it is free."""
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        return (
            f"bridge {BRIDGE} exists: a real node is already running on this machine "
            "(`modeldeploy-dev down --state-dir <its dir>` stops it)"
        )
    if (CGROUP_ROOT / "memory" / KUBEPODS).exists():
        return f"cgroup /{KUBEPODS} exists: another kubelet runs (or ran) on this machine"
    return None


def claim_machine(wait: float | None = None, log: Callable[[str], None] = print) -> None:
    """Take the machine's one real-node slot: the bridge, created atomically, is the claim.

    With ``wait`` (default: ``$MODELDEPLOY_REAL_NODE_WAIT`` seconds, else 0) a
    second node waits for the first one's teardown, which deletes the bridge
    last, instead of failing at once.
    """
    if wait is None:
        wait = float(os.environ.get("MODELDEPLOY_REAL_NODE_WAIT", "0"))
    deadline = time.monotonic() + wait
    said = False
    while True:
        busy = _node_busy()
        if busy is None:
            made = _run("ip", "link", "add", BRIDGE, "type", "bridge", check=False)
            if made.returncode == 0:
                return
            if "exists" not in made.stderr:
                raise RealNodeError(f"cannot create bridge {BRIDGE}: {made.stderr.strip()}")
            busy = f"bridge {BRIDGE} was just created by another real node"
        if time.monotonic() >= deadline:
            raise RealNodeError(busy)
        if not said:
            log(f"waiting up to {wait:.0f}s for the machine's real node: {busy}")
            said = True
        time.sleep(2)


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=check, timeout=60)


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def _iptables_chains() -> dict[str, dict[str, list[str]]]:
    """{binary: {table: [chains]}} as iptables-save reports them."""
    found: dict[str, dict[str, list[str]]] = {}
    for binary in IPTABLES:
        found[binary] = {}
        for table in TABLES:
            out = _run(f"{binary}-save", "-t", table, check=False).stdout
            found[binary][table] = [line[1:].split()[0] for line in out.splitlines() if line.startswith(":")]
    return found


def _netns() -> list[str]:
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []


class RealNode:
    """The real node of one cluster state directory."""

    def __init__(self, cluster_dir: Path) -> None:
        self.directory = cluster_dir / "node"
        self.host_state = self.directory / "host-state.json"

    @property
    def containerd_socket(self) -> Path:
        return self.directory / "containerd" / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.directory / "kubelet"

    # --- before the control plane ---------------------------------------------------

    def prepare(self) -> None:
        """Record the host state teardown restores, then make the bridge (the API server binds its IP)."""
        check_host()
        if self.directory.exists():  # a node stopped with --keep: start from nothing
            if self._has_mounts():
                raise RealNodeError(f"{self.directory} still has mounts; `modeldeploy-dev down` it first")
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True)
        claim_machine()
        state = {
            "sysctls": {
                name: _sysctl_path(name).read_text().strip()
                for name in SYSCTLS
                if _sysctl_path(name).exists()
            },
            "iptables": _iptables_chains(),
            "netns": _netns(),
        }
        self.host_state.write_text(json.dumps(state, indent=2))
        _run("ip", "addr", "add", f"{BRIDGE_IP}/{SUBNET.prefixlen}", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")

    # --- after the control plane ------------------------------------------------------

    def start(
        self,
        table: ProcessTable,
        binaries: Any,
        apiserver_url: str,
        pki: Pki,
        ports: dict[str, int],
        import_images: Callable[[Path], None],
        kubectl: Callable[..., subprocess.CompletedProcess[str]],
    ) -> None:
        self._start_containerd(table)
        import_images(self.containerd_socket)
        self._write_cni()
        self._start_cluster_dns(table, binaries, apiserver_url, pki, ports, kubectl)
        self._start_kubelet(table, binaries, apiserver_url, pki, ports)
        self._start_kube_proxy(table, binaries, apiserver_url, pki, ports)
        wait_until(
            f"node {NODE_NAME} Ready",
            lambda: (
                kubectl(
                    "wait", "--for=condition=Ready", f"node/{NODE_NAME}", "--timeout=5s", check=False
                ).returncode
                == 0
            ),
            90,
            table.get("kubelet").log,
        )

    def _start_containerd(self, table: ProcessTable) -> None:
        home = self.directory / "containerd"
        home.mkdir(parents=True, exist_ok=True)
        config = home / "config.toml"
        config.write_text(
            "\n".join(
                [
                    "version = 2",
                    f'root = "{home / "root"}"',
                    f'state = "{home / "state"}"',
                    f"disabled_plugins = {json.dumps(DISABLED_PLUGINS)}",
                    "[grpc]",
                    f'  address = "{self.containerd_socket}"',
                    "[ttrpc]",
                    f'  address = "{home / "containerd.sock.ttrpc"}"',
                    '[plugins."io.containerd.grpc.v1.cri"]',
                    f'  sandbox_image = "{PAUSE_IMAGE}"',
                    "  restrict_oom_score_adj = true",
                    "  disable_hugetlb_controller = true",
                    "  tolerate_missing_hugetlb_controller = true",
                    '  stream_server_address = "127.0.0.1"',
                    '  stream_server_port = "0"',
                    '[plugins."io.containerd.grpc.v1.cri".containerd]',
                    '  default_runtime_name = "runc"',
                    '  snapshotter = "overlayfs"',
                    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
                    '  runtime_type = "io.containerd.runc.v2"',
                    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
                    "  SystemdCgroup = false",
                    '[plugins."io.containerd.grpc.v1.cri".cni]',
                    f'  bin_dir = "{CNI_BIN_DIR}"',
                    f'  conf_dir = "{self.directory / "cni"}"',
                    "",
                ]
            )
        )
        process = table.start(
            "containerd", [shutil.which("containerd") or "containerd", f"--config={config}"]
        )
        wait_until(
            "containerd",
            lambda: (
                _run("ctr", "--address", str(self.containerd_socket), "version", check=False).returncode == 0
            ),
            60,
            process.log,
        )

    def _write_cni(self) -> None:
        conf_dir = self.directory / "cni"
        conf_dir.mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "1.0.0",
            "name": "modeldeploy-node",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    # No masquerading: pods have no way out of the bridge subnet.
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": str(SUBNET), "gateway": BRIDGE_IP}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.directory / "ipam"),
                    },
                },
                {"type": "loopback"},
            ],
        }
        (conf_dir / "10-modeldeploy.conflist").write_text(json.dumps(conflist, indent=2))

    def _start_cluster_dns(
        self,
        table: ProcessTable,
        binaries: Any,
        apiserver_url: str,
        pki: Pki,
        ports: dict[str, int],
        kubectl: Callable[..., subprocess.CompletedProcess[str]],
    ) -> None:
        """CoreDNS on the bridge IP, port 53, before the kubelet hands that address to pods."""
        kubectl("apply", "-f", "-", input=yaml.safe_dump_all(cluster_dns.RBAC))
        home = self.directory / "coredns"
        home.mkdir(parents=True, exist_ok=True)
        kubeconfig = home / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(apiserver_url, pki, "coredns")))
        kubeconfig.chmod(0o600)
        config = home / "Corefile"
        config.write_text(
            cluster_dns.corefile(BRIDGE_IP, kubeconfig, ports["coredns_health"], ports["coredns_ready"])
        )
        process = table.start("coredns", [str(binaries["coredns"]), "-conf", str(config)])
        # /ready answers 200 once the kubernetes plugin has listed Services and EndpointSlices.
        wait_until(
            "cluster DNS (CoreDNS) ready",
            lambda: http_ok(f"http://127.0.0.1:{ports['coredns_ready']}/ready"),
            60,
            process.log,
        )

    def _start_kubelet(
        self, table: ProcessTable, binaries: Any, apiserver_url: str, pki: Pki, ports: dict[str, int]
    ) -> None:
        self.kubelet_root.mkdir(parents=True, exist_ok=True)
        resolv = self.directory / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\n")  # the pod's own loopback: no name leaves the pod
        endpoint = f"unix://{self.containerd_socket}"
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": BRIDGE_IP,
            "port": ports["kubelet"],
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": ports["kubelet_healthz"],
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(pki.client_cert("kubelet-serving")),
            "tlsPrivateKeyFile": str(pki.client_key("kubelet-serving")),
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "failSwapOn": False,
            "cgroupsPerQOS": True,
            "enforceNodeAllocatable": ["pods"],
            "containerRuntimeEndpoint": endpoint,
            "imageServiceEndpoint": endpoint,
            "resolvConf": str(resolv),
            "clusterDNS": [BRIDGE_IP],
            "clusterDomain": cluster_dns.DOMAIN,
            "podCIDR": str(SUBNET),
            "registerWithTaints": [TAINT],
            "serializeImagePulls": False,
            # Images are imported, never pulled: never collect them, never evict for disk.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "maxPods": 50,
            "shutdownGracePeriod": "0s",
            "containerLogMaxSize": "5Mi",
        }
        config_file = self.directory / "kubelet.yaml"
        config_file.write_text(yaml.safe_dump(config))
        kubeconfig = self.directory / "kubelet.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(apiserver_url, pki, "kubelet-client")))
        kubeconfig.chmod(0o600)
        table.start(
            "kubelet",
            [
                str(binaries["kubelet"]),
                f"--config={config_file}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.kubelet_root}",
                f"--cert-dir={self.directory / 'kubelet-certs'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={BRIDGE_IP}",
                f"--node-labels={NODE_LABEL[0]}={NODE_LABEL[1]}",
                "--v=1",
            ],
        )

    def _start_kube_proxy(
        self, table: ProcessTable, binaries: Any, apiserver_url: str, pki: Pki, ports: dict[str, int]
    ) -> None:
        kubeconfig = self.directory / "kube-proxy.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(apiserver_url, pki, "kube-proxy")))
        kubeconfig.chmod(0o600)
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "hostnameOverride": NODE_NAME,
            "clusterCIDR": str(SUBNET),
            "healthzBindAddress": f"127.0.0.1:{ports['kube_proxy_healthz']}",
            "metricsBindAddress": f"127.0.0.1:{ports['kube_proxy_metrics']}",
            "nodePortAddresses": [str(SUBNET)],
            # Leave the host's conntrack settings alone.
            "conntrack": {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "iptables": {"localhostNodePorts": False},
            "oomScoreAdj": 0,
        }
        config_file = self.directory / "kube-proxy.yaml"
        config_file.write_text(yaml.safe_dump(config))
        table.start("kube-proxy", [str(binaries["kube-proxy"]), f"--config={config_file}"])

    # --- teardown ----------------------------------------------------------------------

    def teardown(self, table: ProcessTable | None, kube_proxy: str | None) -> None:
        """Stop the node's processes and remove everything it added to the host.

        Safe to call on a half-started node and twice; needs no API server.
        """
        if not self.host_state.exists():
            return
        state = json.loads(self.host_state.read_text())
        if table is not None:
            for name in ("kube-proxy", "kubelet", "coredns"):
                if any(p.name == name for p in table.processes):
                    table.stop(name)
        if kube_proxy:
            subprocess.run([kube_proxy, "--cleanup"], capture_output=True, timeout=60, check=False)
        self._kill_pod_processes()
        if table is not None and any(p.name == "containerd" for p in table.processes):
            table.stop("containerd")
        self._kill_shims()
        self._unmount()
        if not self._has_mounts():
            # The image store and pod volumes (about 1.8 GB with the demo's images); logs stay.
            for store in ("containerd", "kubelet"):
                shutil.rmtree(self.directory / store, ignore_errors=True)
        for name in set(_netns()) - set(state["netns"]):
            path = NETNS_DIR / name
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
            with contextlib.suppress(OSError):
                path.unlink()
        self._remove_cgroups()
        _remove_new_chains(state["iptables"])
        for name, value in state["sysctls"].items():
            path = _sysctl_path(name)
            with contextlib.suppress(OSError):
                if path.read_text().strip() != value:
                    path.write_text(value + "\n")
        self.host_state.unlink()
        # Last: the bridge is the machine's claim (claim_machine), so a waiting node
        # starts only once everything above is restored.
        _run("ip", "link", "delete", BRIDGE, check=False)

    def _kill_pod_processes(self) -> None:
        """SIGKILL every process in the pods' cgroups (containers ignore a dead kubelet)."""
        for _ in range(50):
            pids = _cgroup_pids(CGROUP_ROOT / "pids" / KUBEPODS) | _cgroup_pids(
                CGROUP_ROOT / "memory" / KUBEPODS
            )
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    def _kill_shims(self) -> None:
        socket = str(self.directory / "containerd")
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "containerd-shim" in cmdline and socket in cmdline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(proc.name), signal.SIGKILL)
                deadline = time.monotonic() + 5
                while pid_alive(int(proc.name)) and time.monotonic() < deadline:
                    time.sleep(0.05)

    def _has_mounts(self) -> bool:
        return any(p.startswith(f"{self.directory}/") for p in mount_points())

    def _unmount(self) -> None:
        """Unmount everything below the node's directory, deepest first."""
        prefix = str(self.directory)
        for _ in range(3):
            points = [p for p in mount_points() if p == prefix or p.startswith(prefix + "/")]
            if not points:
                return
            for point in sorted(points, key=len, reverse=True):
                if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
                    subprocess.run(["umount", "-l", point], capture_output=True, check=False)

    def _remove_cgroups(self) -> None:
        for controller in CGROUP_ROOT.iterdir():
            top = controller / KUBEPODS
            if not top.is_dir():
                continue
            for directory in sorted(
                (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            ):
                with contextlib.suppress(OSError):
                    directory.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()


def mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        points.append(point.replace("\\040", " "))
    return points


def _cgroup_pids(top: Path) -> set[int]:
    pids: set[int] = set()
    if not top.is_dir():
        return pids
    for procs in top.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids |= {int(line) for line in procs.read_text().split()}
    return pids


def _remove_new_chains(before: dict[str, dict[str, list[str]]]) -> None:
    """Delete the iptables chains that were not there before the node, and every rule that jumps to them."""
    after = _iptables_chains()
    for binary in IPTABLES:
        for table in TABLES:
            new = set(after[binary][table]) - set(before.get(binary, {}).get(table, []))
            if not new:
                continue
            saved = _run(f"{binary}-save", "-t", table, check=False).stdout
            for line in saved.splitlines():
                if not line.startswith("-A "):
                    continue
                words = shlex.split(line)
                chain = words[1]
                target = words[words.index("-j") + 1] if "-j" in words else None
                if chain not in new and target in new:
                    _run(binary, "-t", table, "-D", *words[1:], check=False)
            for chain in new:
                _run(binary, "-t", table, "-F", chain, check=False)
            for chain in new:
                _run(binary, "-t", table, "-X", chain, check=False)


def node_leftovers(cluster_dir: Path) -> dict[str, Any]:
    """What a torn-down node could have left on the host: every list must be empty."""
    node_dir = str(cluster_dir.resolve() / "node")
    chains = _iptables_chains()
    return {
        "mounts": [p for p in mount_points() if p.startswith(node_dir)],
        "netns": [n for n in _netns() if n.startswith("cni-")],
        "bridge": [BRIDGE] if Path(f"/sys/class/net/{BRIDGE}").exists() else [],
        "chains": sorted(
            f"{binary}/{table}/{chain}"
            for binary, tables in chains.items()
            for table, names in tables.items()
            for chain in names
            if chain.startswith(("KUBE-", "CNI-"))
        ),
        "cgroups": [str(p) for p in CGROUP_ROOT.glob(f"*/{KUBEPODS}")],
    }


def _kubeconfig(server: str, pki: Pki, who: str) -> dict[str, Any]:
    from modeldeploy_dev.cluster import _kubeconfig as kubeconfig

    return kubeconfig(server, pki, who)
