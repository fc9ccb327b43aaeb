"""The local control plane's binaries: where they come from and how they are built.

The control plane runs as plain processes, the way controller-runtime's
envtest does. Each binary is looked up, in order:

(The real node's kubelet and kube-proxy are built the same way; its container
runtime, containerd with runc, comes from Debian: ``make node-deps``.)

1. ``KUBEBUILDER_ASSETS`` (the envtest convention; usually etcd, kube-apiserver
   and kubectl only), when the binary there reports the pinned version;
2. the version-stamped cache, ``$MODELDEPLOY_CACHE`` or ``~/.cache/modeldeploy``,
   ``bin/<component>-<version>/``;
3. ``PATH``, when the binary there reports the pinned version;
4. otherwise it is built from its Go module at the pinned version (wrapper
   modules in ``tools/go/``) into the cache. The first build is long; later
   runs find the cache and build nothing.

Prometheus (and promtool) build the same way, from the ``github.com/prometheus/prometheus``
module, with build tags that link in only the Kubernetes, static and file service
discovery (``remove_all_sd,enable_kubernetes_sd``) and without ``builtinassets``: the
web UI's files are not embedded, and the HTTP API and ``/-/ready`` the harness uses
need none.

CoreDNS, the real node's cluster DNS, builds from a wrapper module whose ``main.go``
imports only the plugins the node's Corefile uses (kubernetes, cache, errors, log,
health, ready, bind), not CoreDNS's full plugin list with its cloud SDKs.

Traefik, the real node's Gateway API implementation, is built in a copy of its own
module (its go.mod's replace directives only hold there), with the patches in
``tools/go/traefik/`` applied first.

Missing components are built two at a time (``MODELDEPLOY_BUILD_JOBS``), longest first,
sharing one Go build and module cache (Go locks both for concurrent use), each into its
own staging directory. One ``go build`` alone leaves cores idle while it downloads
modules and links. Each build's output goes to ``<cache>/bin/logs/<component>.log``; a
failed build is named with the tail of its log, and the builds already running finish
(their binaries are kept) before the error is raised.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from modeldeploy_dev.processes import log_tail

REPO_ROOT = Path(__file__).resolve().parents[2]
GO_WRAPPERS = REPO_ROOT / "tools" / "go"

KUBERNETES_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v3.22.0"
GATEWAY_API_VERSION = "v1.4.1"
ISTIO_API_VERSION = "v1.31.1"
# The resource metrics API (metrics.k8s.io) for HPAs, scraping the real node's kubelet.
METRICS_SERVER_VERSION = "v0.8.0"
# Prometheus v3.16.0 is published as Go module v0.316.0 (tools/go/prometheus pins it).
PROMETHEUS_VERSION = "v3.16.0"
# Argo CD's util/lua (the Lua VM of its health checks and actions), mirrored for the argocd/ tests.
ARGOCD_VERSION = "v3.5.7"
TRAEFIK_VERSION = "v3.6.12"
# The real node's cluster DNS (tools/go/coredns links in only the plugins it uses).
COREDNS_VERSION = "v1.15.0"

KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# The real node's agents: built from the same pinned module, cached apart so that adding
# them did not invalidate the control plane's cached binaries.
KUBERNETES_NODE_COMMANDS = ("kubelet", "kube-proxy")


def cache_root() -> Path:
    return Path(os.environ.get("MODELDEPLOY_CACHE", Path.home() / ".cache" / "modeldeploy"))


@dataclass(frozen=True)
class Component:
    """One Go-built component: which binaries it yields and how to build them."""

    name: str
    version: str
    wrapper: str
    packages: tuple[str, ...]
    ldflags: tuple[str, ...]
    version_args: tuple[str, ...]
    tags: tuple[str, ...] = ()
    # Built inside a copy of this module (not as a dependency of the wrapper), after
    # applying the wrapper directory's *.patch files to it.
    source_module: str | None = None

    @property
    def binaries(self) -> tuple[str, ...]:
        return tuple(package.rsplit("/", 1)[-1] if package != "." else self.name for package in self.packages)

    @property
    def patches(self) -> list[Path]:
        return sorted((GO_WRAPPERS / self.wrapper).glob("*.patch")) if self.source_module else []

    @property
    def directory(self) -> Path:
        suffix = ""
        if self.patches:
            digest = hashlib.sha256(b"".join(path.read_bytes() for path in self.patches)).hexdigest()
            suffix = f"-{digest[:12]}"
        return cache_root() / "bin" / f"{self.name}-{self.version}{suffix}"


def _kubernetes_ldflags(version: str) -> tuple[str, ...]:
    major, minor, _ = version.lstrip("v").split(".")
    built = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    flags: list[str] = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
            f"-X {package}.buildDate={built}",
        ]
    return tuple(flags)


COMPONENTS: tuple[Component, ...] = (
    Component(
        name="etcd",
        version=ETCD_VERSION,
        wrapper="etcd",
        packages=(".",),
        ldflags=("-X go.etcd.io/etcd/api/v3/version.GitSHA=modeldeploy-wrapper",),
        version_args=("--version",),
    ),
    Component(
        name="kubernetes",
        version=KUBERNETES_VERSION,
        wrapper="kubernetes",
        packages=tuple(f"k8s.io/kubernetes/cmd/{command}" for command in KUBERNETES_COMMANDS),
        ldflags=_kubernetes_ldflags(KUBERNETES_VERSION),
        version_args=("--version",),
    ),
    Component(
        name="kubernetes-node",
        version=KUBERNETES_VERSION,
        wrapper="kubernetes",
        packages=tuple(f"k8s.io/kubernetes/cmd/{command}" for command in KUBERNETES_NODE_COMMANDS),
        ldflags=_kubernetes_ldflags(KUBERNETES_VERSION),
        version_args=("--version",),
    ),
    Component(
        name="kwok",
        version=KWOK_VERSION,
        wrapper="kwok",
        packages=("sigs.k8s.io/kwok/cmd/kwok",),
        ldflags=(f"-X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION}",),
        version_args=("--version",),
    ),
    Component(
        name="helm",
        version=HELM_VERSION,
        wrapper="helm",
        packages=("helm.sh/helm/v3/cmd/helm",),
        ldflags=(f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",),
        version_args=("version", "--short"),
    ),
    Component(
        name="metrics-server",
        version=METRICS_SERVER_VERSION,
        wrapper="metrics-server",
        packages=("sigs.k8s.io/metrics-server/cmd/metrics-server",),
        ldflags=(
            f"-X k8s.io/client-go/pkg/version.gitVersion={METRICS_SERVER_VERSION}",
            f"-X k8s.io/component-base/version.gitVersion={METRICS_SERVER_VERSION}",
        ),
        version_args=("--version",),
    ),
    Component(
        name="prometheus",
        version=PROMETHEUS_VERSION,
        wrapper="prometheus",
        packages=(
            "github.com/prometheus/prometheus/cmd/prometheus",
            "github.com/prometheus/prometheus/cmd/promtool",
        ),
        ldflags=(
            f"-X github.com/prometheus/common/version.Version={PROMETHEUS_VERSION.lstrip('v')}",
            "-X github.com/prometheus/common/version.Revision=module-v0.316.0",
            "-X github.com/prometheus/common/version.Branch=HEAD",
        ),
        version_args=("--version",),
        tags=("remove_all_sd", "enable_kubernetes_sd"),
    ),
    Component(
        name="argocd-lua",
        version=ARGOCD_VERSION,
        wrapper="argocd-lua",
        packages=(".",),
        ldflags=(),
        version_args=("--version",),
    ),
    # The real node's gateway: Traefik's Gateway API provider, with RequestMirror filters
    # served by Traefik's own mirroring service (tools/go/traefik/request-mirror.patch), and
    # without lego's ~150 ACME DNS providers and their cloud SDKs, which the gateway never uses
    # (no-acme-dns-providers.patch: 847 of 2,495 packages, 41% of the Go files, not compiled).
    Component(
        name="traefik",
        version=TRAEFIK_VERSION,
        wrapper="traefik",
        packages=("./cmd/traefik",),
        ldflags=(f"-X github.com/traefik/traefik/v3/pkg/version.Version={TRAEFIK_VERSION}",),
        version_args=("version",),
        source_module="github.com/traefik/traefik/v3",
    ),
    # The real node's cluster DNS: CoreDNS's kubernetes plugin serving cluster.local, and
    # nothing forwarded (tools/go/coredns/main.go picks the plugins).
    Component(
        name="coredns",
        version=COREDNS_VERSION,
        wrapper="coredns",
        packages=(".",),
        ldflags=("-X github.com/coredns/coredns/coremain.GitCommit=module-" + COREDNS_VERSION,),
        version_args=("-version",),
    ),
)

# The controllers an SRE would install instead, benchmarked side by side (`make bench
# BENCH_ARGS=--peers`, `make peers`). Built on demand only: not part of `make binaries`
# nor of `.ci/run`, and never a dependency of modeldeploy.
ARGO_ROLLOUTS_VERSION = "v1.10.1"  # v1.10.2 declares a Go newer than the local toolchain
FLAGGER_VERSION = "v1.36.1"

PEERS: tuple[Component, ...] = (
    Component(
        name="argo-rollouts",
        version=ARGO_ROLLOUTS_VERSION,
        wrapper="argo-rollouts",
        packages=("github.com/argoproj/argo-rollouts/cmd/rollouts-controller",),
        # Argo Rollouts prints this with a "v" in front.
        ldflags=(f"-X github.com/argoproj/argo-rollouts/utils/version.version={ARGO_ROLLOUTS_VERSION[1:]}",),
        version_args=("--version",),
    ),
    Component(
        name="flagger",
        version=FLAGGER_VERSION,
        wrapper="flagger",
        packages=("github.com/fluxcd/flagger/cmd/flagger",),
        ldflags=(f"-X github.com/fluxcd/flagger/pkg/version.REVISION={FLAGGER_VERSION}",),
        version_args=("-version",),
    ),
)

BINARY_VERSIONS: dict[str, str] = {
    binary: component.version for component in (*COMPONENTS, *PEERS) for binary in component.binaries
}


def _go_env() -> dict[str, str]:
    return {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}


def _reports_version(path: Path, binary: str) -> bool:
    """True when the binary at path prints the version we pin (kubectl: the client's)."""
    args = ["version", "--client"] if binary == "kubectl" else ["--version"]
    if binary == "helm":
        args = ["version", "--short"]
    try:
        out = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    wanted = BINARY_VERSIONS[binary]
    text = out.stdout + out.stderr
    return wanted in text or wanted.lstrip("v") in text


def _candidates(binary: str) -> Iterable[Path]:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        yield Path(assets) / binary
    on_path = shutil.which(binary)
    if on_path:
        yield Path(on_path)


def find_existing(binary: str) -> Path | None:
    """An already present binary of the pinned version, or None."""
    component = next(c for c in (*COMPONENTS, *PEERS) if binary in c.binaries)
    cached = component.directory / binary
    if cached.is_file():
        return cached
    if component.source_module is not None:  # patched here: a binary found elsewhere is not it
        return None
    for candidate in _candidates(binary):
        if candidate.is_file() and os.access(candidate, os.X_OK) and _reports_version(candidate, binary):
            return candidate
    return None


class BuildError(RuntimeError):
    """A component's build failed: names it and carries the tail of its log."""

    def __init__(self, component: Component, detail: str, log_path: Path) -> None:
        self.component = component
        self.detail = detail
        self.log_path = log_path
        tail = _tail(log_path)
        super().__init__(
            f"building {component.name} {component.version} failed ({detail}); "
            f"last lines of {log_path}:\n{tail}"
        )


def _tail(path: Path, lines: int = 25) -> str:
    """The log's last lines, indented under the error."""
    tail = log_tail(path, lines)
    return "\n".join("    " + line for line in tail.splitlines()) or "    (empty log)"


@dataclass(frozen=True)
class BuildTimes:
    """What one component's build took: wall seconds, and the CPU seconds of go and its children."""

    wall: float
    user: float
    system: float


def build_log_path(component: Component) -> Path:
    return cache_root() / "bin" / "logs" / f"{component.name}.log"


def _run_logged(args: list[str], cwd: Path, log_file: Path, component: Component) -> tuple[float, float]:
    """Run a command with its output appended to log_file; returns its (and its children's)
    user and system CPU seconds. Raises BuildError on a non-zero exit."""
    with log_file.open("a") as out:
        out.write(f"$ (cd {cwd} && {' '.join(args)})\n")
        out.flush()
        try:
            process = subprocess.Popen(
                args, cwd=cwd, env=_go_env(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        except OSError as error:
            raise BuildError(component, f"{args[0]}: {error}", log_file) from error
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise BuildError(component, f"`{' '.join(args[:2])}` exited with {process.returncode}", log_file)
    return usage.ru_utime, usage.ru_stime


def build_component(component: Component, log: Callable[[str], None] = print) -> float:
    """Build one component into its cache directory; returns the seconds it took."""
    return _build(component, log).wall


def _build(component: Component, log: Callable[[str], None]) -> BuildTimes:
    started = time.monotonic()
    wrapper = GO_WRAPPERS / component.wrapper
    component.directory.parent.mkdir(parents=True, exist_ok=True)
    log_file = build_log_path(component)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text("")
    staging = Path(tempfile.mkdtemp(prefix=f".{component.name}-", dir=component.directory.parent))
    user = system = 0.0
    try:
        workdir = wrapper
        if component.source_module is not None:
            workdir = _patched_source(component, staging / "src", log, log_file)
        log(f"building {component.name} {component.version} (go build in {workdir}; log: {log_file})")
        user, system = _run_logged(
            [
                "go",
                "build",
                "-trimpath",
                # The linker drops DWARF anyway (-w); not generating it cuts the compile's CPU by
                # about a sixth (helm cold: 175 CPU-s against 214).
                "-gcflags=all=-dwarf=false",
                "-o",
                f"{staging}{os.sep}",
                "-ldflags",
                " ".join(("-s", "-w", *component.ldflags)),
                *(("-tags", ",".join(component.tags)) if component.tags else ()),
                *component.packages,
            ],
            workdir,
            log_file,
            component,
        )
        if component.source_module is not None:
            shutil.rmtree(staging / "src")
        if component.packages == (".",):
            (staging / wrapper.name).rename(staging / component.name)
        if component.directory.exists():
            shutil.rmtree(component.directory)
        staging.rename(component.directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    times = BuildTimes(time.monotonic() - started, user, system)
    log(
        f"built {component.name} {component.version} in {times.wall:.0f}s "
        f"({times.user:.0f}s user, {times.system:.0f}s sys CPU)"
    )
    return times


# Longest builds first, so that the last ones to finish are short. kubernetes-node compiles
# mostly the packages kubernetes does: it starts once those are in the Go build cache.
BUILD_ORDER = (
    "kubernetes",
    "traefik",
    "prometheus",
    "metrics-server",
    "kubernetes-node",
    "coredns",
    "helm",
    "kwok",
    "etcd",
    "argocd-lua",
)
BUILD_AFTER = {"kubernetes-node": "kubernetes"}


def build_jobs() -> int:
    """How many components build at once: ``MODELDEPLOY_BUILD_JOBS``, 2 by default."""
    value = os.environ.get("MODELDEPLOY_BUILD_JOBS", "2")
    try:
        jobs = int(value)
    except ValueError:
        raise ValueError(f"MODELDEPLOY_BUILD_JOBS={value!r}: give a whole number of builds, e.g. 2") from None
    if jobs < 1:
        raise ValueError(f"MODELDEPLOY_BUILD_JOBS={value!r}: give at least 1")
    return jobs


def build_components(
    components: Iterable[Component], log: Callable[[str], None] = print, jobs: int | None = None
) -> dict[str, BuildTimes]:
    """Build the components, ``jobs`` at a time (``build_jobs()`` when None), longest first.

    After a failure no new build starts; the running ones finish, then a BuildError names
    the first failed component (and the others that failed)."""
    jobs = build_jobs() if jobs is None else jobs
    rank = {name: index for index, name in enumerate(BUILD_ORDER)}
    pending = sorted(components, key=lambda c: rank.get(c.name, len(BUILD_ORDER)))
    total = len(pending)
    names = {component.name for component in pending}
    done: dict[str, BuildTimes] = {}
    failed: list[tuple[Component, Exception]] = []
    running: set[str] = set()
    lock = threading.Condition()

    def say(message: str, prefix: str = "") -> None:
        with lock:
            log(prefix + message)

    def ready(component: Component) -> bool:
        before = BUILD_AFTER.get(component.name)
        return before is None or before not in names or before in done

    def work() -> None:
        while True:
            with lock:
                while True:
                    if failed or not pending:
                        return
                    component = next((c for c in pending if ready(c)), None)
                    if component is not None:
                        break
                    if not running:  # waiting on something that will never be built
                        return
                    lock.wait()
                pending.remove(component)
                running.add(component.name)
                prefix = f"[{total - len(pending)}/{total}] "
            try:
                times = _build(component, functools.partial(say, prefix=prefix))
            except Exception as error:  # reported below, with the component's name
                with lock:
                    failed.append((component, error))
                    running.discard(component.name)
                    lock.notify_all()
                return
            with lock:
                done[component.name] = times
                running.discard(component.name)
                lock.notify_all()

    threads = [
        threading.Thread(target=work, name=f"go-build-{n}", daemon=True) for n in range(min(jobs, total))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        component, error = failed[0]
        also = f"; also failed: {', '.join(c.name for c, _ in failed[1:])}" if failed[1:] else ""
        if isinstance(error, BuildError):
            raise BuildError(component, error.detail + also, error.log_path) from error
        raise BuildError(
            component, f"{type(error).__name__}: {error}{also}", build_log_path(component)
        ) from error
    return done


def _patched_source(component: Component, target: Path, log: Callable[[str], None], log_file: Path) -> Path:
    """A writable copy of the component's module at its version, with its patches applied."""
    assert component.source_module is not None
    shutil.copytree(go_module_dir(component.source_module, component.version), target)
    for path in [target, *target.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    for patch in component.patches:
        log(f"applying {patch.relative_to(REPO_ROOT)} to {component.name}")
        _run_logged(["patch", "--batch", "--forward", "-p1", "-i", str(patch)], target, log_file, component)
    return target


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every binary the local control plane runs."""

    paths: dict[str, Path]

    def __getitem__(self, binary: str) -> Path:
        return self.paths[binary]

    @property
    def directory_for_path(self) -> list[str]:
        return sorted({str(path.parent) for path in self.paths.values()})


def ensure_binaries(
    build: bool = True, log: Callable[[str], None] = print, jobs: int | None = None
) -> Binaries:
    """Find every binary, building what is missing when build is True (``jobs`` at a time)."""
    paths: dict[str, Path] = {}
    missing: list[Component] = []
    for component in COMPONENTS:
        found = {binary: find_existing(binary) for binary in component.binaries}
        if any(path is None for path in found.values()):
            if not build:
                absent = ", ".join(binary for binary, path in found.items() if path is None)
                raise FileNotFoundError(f"{absent} {component.version} not found; run `make binaries`")
            missing.append(component)
            continue
        paths.update({binary: path for binary, path in found.items() if path is not None})
    if missing:
        started = time.monotonic()
        times = build_components(missing, log, jobs)
        summary = ", ".join(
            f"{name} {t.wall:.0f}s" for name, t in sorted(times.items(), key=lambda i: -i[1].wall)
        )
        user = sum(t.user for t in times.values())
        system = sum(t.system for t in times.values())
        log(
            f"built {len(times)} components in {time.monotonic() - started:.0f}s "
            f"({user:.0f}s user, {system:.0f}s sys CPU): {summary}"
        )
        for component in missing:
            paths.update({binary: component.directory / binary for binary in component.binaries})
    return Binaries(paths)


def ensure_peers(log: Callable[[str], None] = print, only: Iterable[str] | None = None) -> dict[str, Path]:
    """The peer controllers' binaries (rollouts-controller, flagger), built into the cache on first use;
    only: the names of the peers wanted (argo-rollouts, flagger), all when None."""
    wanted = set(only) if only is not None else {component.name for component in PEERS}
    components = [c for c in PEERS if c.name in wanted]
    missing = [c for c in components if any(not (c.directory / binary).is_file() for binary in c.binaries)]
    if missing:
        build_components(missing, log)
    return {binary: c.directory / binary for c in components for binary in c.binaries}


def go_module_dir(module: str, version: str, wrapper: str = "crds") -> Path:
    """The directory of a downloaded Go module (fetched through the module proxy on first use)."""
    import json

    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=GO_WRAPPERS / wrapper,
        env=_go_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(json.loads(out)["Dir"])


def third_party_crd_files() -> list[Path]:
    """Gateway API's standard-channel CRDs and Istio's networking CRDs, from their Go modules."""
    gateway = go_module_dir("sigs.k8s.io/gateway-api", GATEWAY_API_VERSION) / "config" / "crd" / "standard"
    istio = (
        go_module_dir("istio.io/api", ISTIO_API_VERSION) / "kubernetes" / "customresourcedefinitions.gen.yaml"
    )
    return [*sorted(gateway.glob("gateway.networking.k8s.io_*.yaml")), istio]


def peer_crd_files(peer: str) -> list[Path]:
    """A peer's CRDs, from the very module its binary is built from."""
    if peer == "argo-rollouts":
        rollouts = go_module_dir("github.com/argoproj/argo-rollouts", ARGO_ROLLOUTS_VERSION, peer)
        return sorted((rollouts / "manifests" / "crds").glob("*-crd.yaml"))
    if peer == "flagger":
        return [
            go_module_dir("github.com/fluxcd/flagger", FLAGGER_VERSION, peer)
            / "artifacts"
            / "flagger"
            / "crd.yaml"
        ]
    raise ValueError(f"unknown peer {peer!r}: argo-rollouts or flagger")
