"""`modeldeploy run`: start the operator."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from typing import Any

from prometheus_client import start_http_server

from modeldeploy.kube.access import without_kubernetes_models

with without_kubernetes_models():  # the first import of kopf: see there
    import kopf

from modeldeploy.handlers import build_registry
from modeldeploy.kube.client import KubeClient
from modeldeploy.settings import OperatorSettings, add_arguments, from_arguments


def register(commands: Any) -> None:
    run = commands.add_parser("run", help="run the operator")
    add_arguments(run)
    run.set_defaults(handler=_run)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any structured extras."""

    STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            {k: v for k, v in record.__dict__.items() if k not in self.STANDARD and not k.startswith("_")}
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    settings = from_arguments(args)
    return run_operator(settings)


def run_operator(settings: OperatorSettings) -> int:
    configure_logging(settings.log_format)
    client = KubeClient.from_environment(settings.kubeconfig, settings.context)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.bind_address)
    registry = build_registry(settings, client)
    asyncio.run(
        kopf.operator(
            registry=registry,
            clusterwide=settings.clusterwide,
            namespaces=list(settings.namespaces),
            standalone=settings.peering is None,
            peering_name=settings.peering,
            priority=settings.priority,
            liveness_endpoint=f"http://{settings.bind_address}:{settings.health_port}/healthz",
        )
    )
    return 0
