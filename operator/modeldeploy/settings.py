"""The operator's settings: read once, from flags with environment fallbacks, into one typed object."""

from __future__ import annotations

import argparse
import os
import random
from dataclasses import dataclass

DEFAULT_SERVICE_URL_TEMPLATE = "http://{service}.{namespace}.svc:{port}"
"""How the operator reaches a Service in the cluster (warm-up requests)."""


@dataclass(frozen=True)
class OperatorSettings:
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: tuple[str, ...] = ()
    prometheus_url: str | None = None
    metrics_port: int = 8080
    health_port: int = 8081
    bind_address: str = "0.0.0.0"
    log_format: str = "text"
    peering: str | None = None
    priority: int = 0
    service_url_template: str = DEFAULT_SERVICE_URL_TEMPLATE
    resync_seconds: float = 300.0
    workers: int = 4
    config: str | None = None
    egress_allow: tuple[str, ...] = ()
    inline_providers: bool = False
    operator_namespace: str | None = None
    io_workers: int = 32
    """Threads for slow I/O (warm-up, webhooks, Prometheus queries), shared by all ModelDeployments."""
    io_per_deployment: int = 2
    """Slow-I/O jobs one ModelDeployment may have running at once."""
    io_per_namespace: int = 4
    """Slow-I/O jobs one namespace (one tenant) may have running at once."""
    retry_base_seconds: float = 1.0
    """First wait after a failed reconcile; doubled per failure in a row, with jitter."""
    retry_max_seconds: float = 120.0
    """Longest wait between retries of a failing reconcile (also bounds a Retry-After)."""

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--kubeconfig",
        default=env("KUBECONFIG"),
        help="kubeconfig file (default $KUBECONFIG, ~/.kube/config, or in-cluster)",
    )
    parser.add_argument("--context", default=env("MODELDEPLOY_CONTEXT"), help="kubeconfig context")
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        dest="namespaces",
        default=[n for n in env("MODELDEPLOY_NAMESPACES", "").split(",") if n],
        help="watch only this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument(
        "--prometheus-url",
        default=env("MODELDEPLOY_PROMETHEUS_URL"),
        help="Prometheus used when a ModelDeployment names none",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(env("MODELDEPLOY_METRICS_PORT", "8080")),
        help="port of the operator's Prometheus metrics (/metrics); 0 disables",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=int(env("MODELDEPLOY_HEALTH_PORT", "8081")),
        help="port of the liveness endpoint (/healthz)",
    )
    parser.add_argument(
        "--bind-address",
        default=env("MODELDEPLOY_BIND_ADDRESS", "0.0.0.0"),
        help="address the metrics and health endpoints listen on",
    )
    parser.add_argument(
        "--log-format", choices=("text", "json"), default=env("MODELDEPLOY_LOG_FORMAT", "text")
    )
    parser.add_argument(
        "--peering",
        default=env("MODELDEPLOY_PEERING"),
        help="kopf peering name for HA: only the highest-priority instance acts",
    )
    parser.add_argument(
        "--service-url-template",
        default=env("MODELDEPLOY_SERVICE_URL_TEMPLATE", DEFAULT_SERVICE_URL_TEMPLATE),
        help="how the operator reaches a Service for warm-up requests ({service}, {namespace}, {port})",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=int(env("MODELDEPLOY_PRIORITY", "")) if env("MODELDEPLOY_PRIORITY") else None,
        help="kopf peering priority; with --peering each replica needs its own (default: random)",
    )
    parser.add_argument(
        "--resync",
        type=float,
        default=float(env("MODELDEPLOY_RESYNC_SECONDS", "300")),
        help="seconds between periodic re-plans of an object at rest (reads nothing)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(env("MODELDEPLOY_WORKERS", "16")),
        help="reconciles that may run at once",
    )
    parser.add_argument(
        "--io-workers",
        type=_at_least_one,
        default=env("MODELDEPLOY_IO_WORKERS", "32"),  # a string: checked by type= like a flag
        help="threads for slow I/O (warm-up, webhooks, Prometheus queries), shared by all ModelDeployments",
    )
    parser.add_argument(
        "--io-per-deployment",
        type=_at_least_one,
        default=env("MODELDEPLOY_IO_PER_DEPLOYMENT", "2"),  # a string: checked by type= like a flag
        help="slow-I/O jobs one ModelDeployment may have running at once",
    )
    parser.add_argument(
        "--io-per-namespace",
        type=_at_least_one,
        default=env("MODELDEPLOY_IO_PER_NAMESPACE", "4"),  # a string: checked by type= like a flag
        help="slow-I/O jobs one namespace may have running at once, over all its ModelDeployments",
    )
    parser.add_argument(
        "--retry-base",
        type=_positive_seconds,
        default=env("MODELDEPLOY_RETRY_BASE_SECONDS", "1"),
        help="seconds before the first retry of a failed reconcile; doubled per failure, with jitter",
    )
    parser.add_argument(
        "--retry-max",
        type=_positive_seconds,
        default=env("MODELDEPLOY_RETRY_MAX_SECONDS", "120"),
        help="longest wait between retries of a failing reconcile (also bounds Retry-After)",
    )

    parser.add_argument(
        "--config",
        default=env("MODELDEPLOY_CONFIG"),
        help="the admin's YAML config: metricProviders, inlineProviders, egress.allow",
    )
    parser.add_argument(
        "--egress-allow",
        action="append",
        dest="egress_allow",
        default=[e for e in env("MODELDEPLOY_EGRESS_ALLOW", "").split(",") if e],
        help=(
            "where outbound calls may go: CIDR, host name, *.suffix or apiserver (repeatable; "
            "adds to the config's egress.allow; default private addresses only)"
        ),
    )
    parser.add_argument(
        "--inline-providers",
        action="store_true",
        default=env("MODELDEPLOY_INLINE_PROVIDERS", "") in ("1", "true"),
        help="honour spec.analysis.prometheus (an address written by the tenant); default off",
    )
    parser.add_argument(
        "--operator-namespace",
        default=env("MODELDEPLOY_OPERATOR_NAMESPACE"),
        help="where the providers' Secrets live (default: the in-cluster ServiceAccount's namespace)",
    )


def from_arguments(args: argparse.Namespace) -> OperatorSettings:
    return OperatorSettings(
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespaces=tuple(args.namespaces),
        prometheus_url=args.prometheus_url,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        bind_address=args.bind_address,
        log_format=args.log_format,
        peering=args.peering,
        priority=args.priority
        if args.priority is not None
        else (random.randint(1, 1_000_000) if args.peering else 0),
        service_url_template=args.service_url_template,
        resync_seconds=args.resync,
        workers=args.workers,
        config=args.config,
        egress_allow=tuple(args.egress_allow),
        inline_providers=args.inline_providers,
        operator_namespace=args.operator_namespace,
        io_workers=args.io_workers,
        io_per_deployment=args.io_per_deployment,
        io_per_namespace=args.io_per_namespace,
        retry_base_seconds=args.retry_base,
        retry_max_seconds=args.retry_max,
    )
