"""`modeldeploy-dev ...`: build the binaries, start and stop the local control plane.

The harness is its own distribution (`devtools/`): the operator package never imports it,
and nothing here ships in the operator's wheel or image.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from modeldeploy_dev.binaries import BuildError, cache_root, ensure_binaries, ensure_peers

IMAGE_NAMES = ("pause", "debian", "operator", "model-server", "gateway")


def default_state_dir() -> Path:
    return cache_root() / "clusters" / "default"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modeldeploy-dev",
        description="The local control plane for modeldeploy's development, tests, demo and benchmarks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    binaries = sub.add_parser("binaries", help="find or build every binary the local control plane needs")
    binaries.set_defaults(handler=_binaries)

    peers = sub.add_parser(
        "peers", help="find or build the benchmark peers (Argo Rollouts, Flagger); not part of binaries"
    )
    peers.set_defaults(handler=_peers)

    images = sub.add_parser(
        "images",
        help="build (or find cached) the real node's images: pause, Debian, operator, model server, gateway",
    )
    images.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"only these images (of {', '.join(IMAGE_NAMES)}; default all). All but the gateway "
        "need no Go binary: `.ci/run` builds them while `make binaries` runs",
    )
    images.set_defaults(handler=_images)

    up = sub.add_parser(
        "up", help="start etcd, the API server, controllers, kwok and Prometheus on 127.0.0.1"
    )
    up.add_argument("--state-dir", type=Path, default=default_state_dir())
    up.add_argument("--nodes", type=int, default=3, help="fake kwok nodes to create (default 3)")
    up.add_argument("--audit", action="store_true", help="write the API server's audit log")
    up.add_argument(
        "--real-node",
        action="store_true",
        help="also run one real node (kubelet, containerd, CNI bridge, kube-proxy; root, `make node-deps`)",
    )
    up.set_defaults(handler=_up)

    down = sub.add_parser("down", help="stop the local control plane and every process it started")
    down.add_argument("--state-dir", type=Path, default=default_state_dir())
    down.add_argument("--keep", action="store_true", help="keep the state directory (logs, data)")
    down.set_defaults(handler=_down)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _binaries(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        found = ensure_binaries(log=_log)
    except BuildError as error:
        _log(f"modeldeploy-dev binaries: {error}")
        return 1
    for name, path in sorted(found.paths.items()):
        print(f"{name:24} {path}")
    _log(f"binaries ready in {time.monotonic() - started:.0f}s (cache: {cache_root()})")
    return 0


def _peers(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        peers = ensure_peers(log=_log)
    except BuildError as error:
        _log(f"modeldeploy-dev peers: {error}")
        return 1
    for binary, path in peers.items():
        print(f"{binary}: {path}")
    _log(f"peers ready in {time.monotonic() - started:.0f}s (cache: {cache_root()})")
    return 0


def _images(args: argparse.Namespace) -> int:
    from modeldeploy_dev.images import (
        debian_image,
        gateway_image,
        model_server_image,
        operator_image,
        pause_image,
    )

    unknown = [name for name in args.names if name not in IMAGE_NAMES]
    if unknown:
        choices = ", ".join(IMAGE_NAMES)
        _log(f"modeldeploy-dev images: unknown image {', '.join(unknown)}; choose from {choices}")
        return 2
    builds = (pause_image, debian_image, operator_image, model_server_image, gateway_image)
    builders = dict(zip(IMAGE_NAMES, builds, strict=True))
    for build in (builders[name] for name in IMAGE_NAMES if not args.names or name in args.names):
        started = time.monotonic()
        image = build(log=_log)
        size = image.archive.stat().st_size / 1e6
        print(f"{image.reference:52} {size:7.1f} MB  ({time.monotonic() - started:.1f}s)")
    return 0


def _up(args: argparse.Namespace) -> int:
    from modeldeploy_dev.cluster import LocalCluster

    cluster = LocalCluster(args.state_dir, nodes=args.nodes, audit=args.audit, real_node=args.real_node)
    if any(cluster.running().values()) if cluster.table else False:
        _log(f"a cluster is already running from {args.state_dir}; `modeldeploy-dev down` stops it")
        return 1
    cluster.start(log=_log)
    node = (
        f" (real node {cluster.real_node_name} in {cluster.info['realNodeSeconds']}s)"
        if args.real_node
        else ""
    )
    _log(f"local control plane up in {cluster.info['startSeconds']}s{node}; state in {cluster.directory}")
    print(f"PROMETHEUS_URL={cluster.prometheus_url}")
    print(f"KUBECONFIG={cluster.kubeconfig}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from modeldeploy_dev.cluster import LocalCluster

    cluster = LocalCluster(args.state_dir)
    cluster.stop()
    if not args.keep and args.state_dir.exists():
        shutil.rmtree(args.state_dir)
    _log(f"local control plane stopped ({args.state_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
