"""Container images built here, with no registry, for the real node.

podman (rootful, ``--runtime runc``: crun fails on hybrid cgroup v1 hosts) builds
each image; ``podman save`` writes it as a docker-archive into the cache,
``~/.cache/modeldeploy/images/<name>-<hash>.tar``, and ``ctr -n k8s.io images
import`` loads it into the node's containerd. Each image's tag is a content hash
of its inputs, so a warm run finds the archive and builds nothing.

- ``pause``: the pod sandbox, a static C program (reaps children, exits on
  SIGTERM), tagged ``registry.k8s.io/pause:3.10`` as containerd's sandbox_image.
- ``debian``: a Debian bookworm base from ``mmdebstrap`` (minbase + python3).
- ``operator``: the project's ``Dockerfile`` with ``PYTHON_IMAGE`` set to that
  base, its wheels downloaded on the host (the build runs with no network).
- ``model-server``: MLServer with its scikit-learn runtime and the demo's models.
- ``gateway``: Traefik's binary (built by ``binaries.py``) on the Debian base.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from modeldeploy_dev.binaries import REPO_ROOT, cache_root

PODMAN = ("podman", "--runtime", "runc")
# The sandbox's hard limits are below podman's defaults ("setrlimit ... Operation not permitted").
ULIMITS = ("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768")
# podman's layer cache keys a `RUN --mount=type=bind` step by its command only, not by what
# is mounted: with it, a changed wheel (from=build) or wheelhouse would not reach the image.
# Our own cache is keyed by the inputs' content, so builds run without podman's.
NO_LAYER_CACHE = ("--no-cache",)
LOCAL_REGISTRY = "localhost/modeldeploy"
# containerd's sandbox_image: the name it looks for, given to the pause image built here.
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
KEEP_BUILDS = 4
"""Archives kept per image name in the cache, newest first."""

PAUSE_C = r"""
/* The pod sandbox's process: holds the pod's namespaces, reaps orphans, exits on SIGINT/SIGTERM. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
    struct sigaction action = {0};
    action.sa_handler = stop;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    action.sa_handler = reap;
    action.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &action, NULL);
    for (;;) pause();
}
"""


def images_dir() -> Path:
    directory = cache_root() / "images"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass(frozen=True)
class Image:
    """A built image: its reference (name:content-hash) and its docker-archive in the cache."""

    name: str
    reference: str
    archive: Path


def content_hash(*parts: bytes | str | Path | Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            digest.update(part.read_bytes())
        elif isinstance(part, bytes):
            digest.update(part)
        elif isinstance(part, str):
            digest.update(part.encode())
        else:
            for path in sorted(part):
                digest.update(str(path.relative_to(REPO_ROOT)).encode())
                digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def podman(*args: str, log: Callable[[str], None] = print) -> None:
    subprocess.run([*PODMAN, *args], check=True)


def _save(reference: str, archive: Path) -> None:
    """Write the image's archive into the cache, and forget the image's builds older than the
    last ``KEEP_BUILDS`` (checkouts of different commits on one machine share the cache: each
    keeps finding its own build instead of rebuilding it after another one's)."""
    staging = archive.with_suffix(".tar.partial")
    staging.unlink(missing_ok=True)
    subprocess.run([*PODMAN, "save", "--format", "docker-archive", "-o", str(staging), reference], check=True)
    staging.rename(archive)
    name = archive.name.rsplit("-", 1)[0]
    builds = sorted(
        (path for path in archive.parent.glob(f"{name}-*.tar") if path.name.rsplit("-", 1)[0] == name),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    for older in builds[KEEP_BUILDS:]:
        if older != archive:
            older.unlink()
            tag = older.name.rsplit("-", 1)[1].removesuffix(".tar")
            subprocess.run(
                [*PODMAN, "rmi", f"{LOCAL_REGISTRY}/{name}:{tag}"], capture_output=True, check=False
            )
    # Build stages (the Dockerfile's `build`) stay behind untagged.
    subprocess.run([*PODMAN, "image", "prune", "--force"], capture_output=True, check=False)


def _cached(name: str, tag: str, reference: str | None = None) -> Image:
    return Image(name, reference or f"{LOCAL_REGISTRY}/{name}:{tag}", images_dir() / f"{name}-{tag}.tar")


def _image_exists(reference: str) -> bool:
    return subprocess.run([*PODMAN, "image", "exists", reference], capture_output=True).returncode == 0


def pause_image(log: Callable[[str], None] = print) -> Image:
    image = _cached("pause", content_hash(PAUSE_C, "gcc -static -Os -s"), PAUSE_IMAGE)
    if image.archive.exists():
        return image
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "pause.c").write_text(PAUSE_C)
        subprocess.run(["gcc", "-static", "-Os", "-s", "-o", "pause", "pause.c"], cwd=context, check=True)
        (Path(context) / "Containerfile").write_text(
            'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n'
        )
        podman("build", "--network=none", *ULIMITS, "-t", PAUSE_IMAGE, context)
    _save(PAUSE_IMAGE, image.archive)
    log(f"built image {PAUSE_IMAGE} in {time.monotonic() - started:.0f}s")
    return image


def import_into_containerd(socket: Path, images: Iterable[Image], log: Callable[[str], None] = print) -> None:
    """Load docker-archives into containerd's k8s.io namespace (the CRI's), skipping what it has."""
    have = subprocess.run(
        ["ctr", "--address", str(socket), "-n", "k8s.io", "images", "list", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for image in images:
        wanted = (
            image.reference
            if "/" in image.reference.split(":")[0]
            else f"docker.io/library/{image.reference}"
        )
        if image.reference in have or wanted in have:
            continue
        started = time.monotonic()
        subprocess.run(
            ["ctr", "--address", str(socket), "-n", "k8s.io", "images", "import", str(image.archive)],
            check=True,
            capture_output=True,
        )
        log(f"imported {image.reference} into containerd in {time.monotonic() - started:.1f}s")


def podman_available() -> bool:
    return shutil.which("podman") is not None


DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# python3 from Debian; pip and venv for the Dockerfile's wheel build and its virtualenv;
# python-is-python3 for the `python` the Dockerfile calls.
DEBIAN_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3")
MMDEBSTRAP = (
    "mmdebstrap",
    "--variant=minbase",
    "--format=tar",
    "--aptopt=APT::Install-Recommends false",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    f"--include={','.join(DEBIAN_PACKAGES)}",
    DEBIAN_SUITE,
)


def debian_image(log: Callable[[str], None] = print) -> Image:
    """A Debian base (minbase + python3) from mmdebstrap, imported into podman."""
    image = _cached("debian", content_hash(*MMDEBSTRAP, DEBIAN_MIRROR))
    if image.archive.exists() and _image_exists(image.reference):
        return image
    if image.archive.exists():  # podman's store was wiped: the archive is enough
        subprocess.run([*PODMAN, "load", "-i", str(image.archive)], check=True, capture_output=True)
        return image
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        rootfs = Path(workdir) / "rootfs.tar"
        subprocess.run([*MMDEBSTRAP, str(rootfs), DEBIAN_MIRROR], check=True)
        subprocess.run(
            [*PODMAN, "import", "--change", 'CMD ["/bin/bash"]', str(rootfs), image.reference],
            check=True,
            capture_output=True,
        )
    _save(image.reference, image.archive)
    log(f"built image {image.reference} in {time.monotonic() - started:.0f}s")
    return image


def _operator_inputs() -> list[Path]:
    """The files the operator image is built from: what .dockerignore lets into the context."""
    files = [REPO_ROOT / "Dockerfile", REPO_ROOT / "pyproject.toml", REPO_ROOT / "README.md"]
    files += [
        path
        for path in (REPO_ROOT / "operator").rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".pyc"
        and not any(part.endswith(".egg-info") for part in path.parts)
    ]
    return files


def operator_image(log: Callable[[str], None] = print) -> Image:
    """The project's Dockerfile built FROM the Debian base, offline, from wheels downloaded on the host."""
    base = debian_image(log)
    inputs = _operator_inputs()
    image = _cached("operator", content_hash(base.reference, *NO_LAYER_CACHE, inputs))
    if image.archive.exists():
        return image
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        context = Path(workdir)
        for path in inputs:
            target = context / path.relative_to(REPO_ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        shutil.copy2(REPO_ROOT / ".dockerignore", context / ".dockerignore")
        # The wheels of modeldeploy's dependencies and of its build backend, for the
        # image's Python (Debian bookworm's 3.11, like this host's).
        wheelhouse = context / "wheelhouse"
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        subprocess.run([*pip, "wheel", "--wheel-dir", str(wheelhouse), str(context)], check=True)
        subprocess.run(
            [*pip, "download", "--dest", str(wheelhouse), "--only-binary=:all:", "setuptools>=69", "wheel"],
            check=True,
        )
        podman(
            "build",
            *NO_LAYER_CACHE,
            "--network=none",
            *ULIMITS,
            "--build-arg",
            f"PYTHON_IMAGE={base.reference}",
            "-t",
            image.reference,
            str(context),
        )
    _save(image.reference, image.archive)
    log(f"built image {image.reference} in {time.monotonic() - started:.0f}s")
    return image


MODEL_SERVER_PACKAGES = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1")
MODEL_SERVER_CONTAINERFILE = """\
# MLServer with its scikit-learn runtime (V2 inference protocol, Prometheus metrics on
# its metrics port, readiness on /v2/health/ready), installed offline from wheels, and
# the demo's three digit classifiers trained at build time by the image's own
# scikit-learn: /models/<version>/ holds model.joblib and its model-settings.json
# (model `digits`, that version). The pod serves /models/$MODEL_VERSION, the version
# the operator sets from the ModelDeployment, unless its MODEL_URI is an MLflow artifact:
# then serve_model.py fetches that model from the registry first (modeldeploy_dev.serve_model).
ARG BASE
FROM ${BASE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \\
    PATH=/opt/mlserver/bin:$PATH
RUN --mount=type=bind,source=wheelhouse,target=/wheelhouse \\
    python -m venv /opt/mlserver \\
 && /opt/mlserver/bin/pip install --no-index --find-links=/wheelhouse {packages}
COPY models.py train.py /opt/train/
RUN /opt/mlserver/bin/python /opt/train/train.py /models && rm -r /opt/train
COPY digits_runtime.py serve_model.py /opt/runtime/
ENV PYTHONPATH=/opt/runtime
RUN groupadd --system --gid 65532 mlserver \\
 && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --shell /usr/sbin/nologin mlserver
USER 65532:65532
WORKDIR /tmp
# Inference in the server's own process (MLSERVER_PARALLEL_WORKERS=0): one process per
# pod, and mlserver 1.7.1's worker pool fails with uvloop 0.23 ("no current event loop").
ENV MLSERVER_HTTP_PORT=8080 MLSERVER_GRPC_PORT=8081 MLSERVER_METRICS_PORT=8082 MLSERVER_HOST=0.0.0.0 \\
    MLSERVER_PARALLEL_WORKERS=0
EXPOSE 8080 8082
ENTRYPOINT ["/opt/mlserver/bin/python", "/opt/runtime/serve_model.py"]
"""
TRAIN_PY = """\
import json
import sys
from pathlib import Path

import joblib

import models

store = Path(sys.argv[1])
train_features, _, train_labels, _ = models.split()
for version in models.VERSIONS:
    directory = store / version
    directory.mkdir(parents=True)
    joblib.dump(models.train(version, train_features, train_labels), directory / "model.joblib")
    settings = {
        "name": "digits",
        "implementation": "digits_runtime.LabelledSKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": version},
    }
    (directory / "model-settings.json").write_text(json.dumps(settings))
"""

DIGITS_RUNTIME_PY = """\
\"\"\"MLServer's scikit-learn runtime that also counts right and wrong answers when told the truth.

A request may carry the true labels of its rows in its parameters
(``{"parameters": {"labels": [3, 7, ...]}}``), as a labelled feedback stream
would. Each labelled prediction then counts in ``digits_labelled_predictions_total``
and, when right, in ``digits_correct_predictions_total`` (labels ``model`` and
``version``, as MLServer's own counters), served on MLServer's metrics port.
(MLServer's ``mlserver.log`` custom metrics are not served there when
inference runs in the server's own process, as here.) Requests without labels
are answered exactly as by ``mlserver_sklearn.SKLearnModel``.
\"\"\"

from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver_sklearn import SKLearnModel
from prometheus_client import Counter

LABELS = ["model", "version"]
# MLServer reloads an implementation's module when it loads the model: the counters, kept in
# the module's namespace across the reload, are registered once.
if "CORRECT" not in globals():
    LABELLED = Counter("digits_labelled_predictions", "Predictions that came with their true label", LABELS)
    CORRECT = Counter("digits_correct_predictions", "Labelled predictions that were right", LABELS)


class LabelledSKLearnModel(SKLearnModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        response = await super().predict(payload)
        extra = (payload.parameters.model_extra or {}) if payload.parameters is not None else {}
        labels = extra.get("labels")
        if labels:
            predictions = NumpyCodec.decode_output(response.outputs[0]).ravel()
            right = sum(int(p) == int(label) for p, label in zip(predictions, labels))
            LABELLED.labels(self.name, str(self.version)).inc(min(len(labels), len(predictions)))
            CORRECT.labels(self.name, str(self.version)).inc(right)
        return response
"""


def model_server_image(log: Callable[[str], None] = print) -> Image:
    """MLServer and its scikit-learn runtime from PyPI wheels downloaded on the host; the demo's models."""
    base = debian_image(log)
    models_py = REPO_ROOT / "devtools" / "modeldeploy_dev" / "demo" / "models.py"
    serve_py = REPO_ROOT / "devtools" / "modeldeploy_dev" / "serve_model.py"
    containerfile = MODEL_SERVER_CONTAINERFILE.replace("{packages}", " ".join(MODEL_SERVER_PACKAGES))
    image = _cached(
        "model-server",
        content_hash(
            base.reference, *NO_LAYER_CACHE, containerfile, TRAIN_PY, DIGITS_RUNTIME_PY, models_py, serve_py
        ),
    )
    if image.archive.exists():
        return image
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        context = Path(workdir)
        (context / "Containerfile").write_text(containerfile)
        (context / "train.py").write_text(TRAIN_PY)
        (context / "digits_runtime.py").write_text(DIGITS_RUNTIME_PY)
        shutil.copy2(models_py, context / "models.py")
        shutil.copy2(serve_py, context / "serve_model.py")
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        subprocess.run(
            [
                *pip,
                "download",
                "--only-binary=:all:",
                "--dest",
                str(context / "wheelhouse"),
                *MODEL_SERVER_PACKAGES,
            ],
            check=True,
        )
        podman(
            "build", *NO_LAYER_CACHE, "--network=none", *ULIMITS, "--build-arg", f"BASE={base.reference}",
            "-t", image.reference, str(context),
        )  # fmt: skip
    _save(image.reference, image.archive)
    log(f"built image {image.reference} in {time.monotonic() - started:.0f}s")
    return image


GATEWAY_CONTAINERFILE = """\
# The real node's Gateway API implementation: Traefik, built here from its Go module
# (modeldeploy_dev.binaries), on the project's Debian base, as a non-root user.
ARG BASE
FROM ${BASE}
COPY traefik /usr/local/bin/traefik
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/traefik"]
"""


def gateway_image(log: Callable[[str], None] = print) -> Image:
    """Traefik's binary (built and cached by binaries.py) on the Debian base."""
    from modeldeploy_dev.binaries import COMPONENTS, build_component, find_existing

    base = debian_image(log)
    binary = find_existing("traefik")
    if binary is None:
        build_component(next(c for c in COMPONENTS if c.name == "traefik"), log)
        binary = find_existing("traefik")
        assert binary is not None
    image = _cached("gateway", content_hash(base.reference, GATEWAY_CONTAINERFILE, binary))
    if image.archive.exists():
        return image
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        context = Path(workdir)
        (context / "Containerfile").write_text(GATEWAY_CONTAINERFILE)
        shutil.copy2(binary, context / "traefik")
        podman(
            "build", "--network=none", *ULIMITS, "--build-arg", f"BASE={base.reference}",
            "-t", image.reference, str(context),
        )  # fmt: skip
    _save(image.reference, image.archive)
    log(f"built image {image.reference} in {time.monotonic() - started:.0f}s")
    return image
