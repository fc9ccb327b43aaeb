"""Which cluster and namespace a plugin command talks to, and errors worded for people.

The flags mirror kubectl's (``--kubeconfig``, ``--context``, ``-n``); without
``-n`` the namespace is the kubeconfig context's, else ``default``. Every
failure a user can cause or meet (a wrong context, a missing object, no
permission, an API server that does not answer) becomes a :class:`CliError`
with one sentence, printed without a traceback, exit code 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from modeldeploy.kube import access
from modeldeploy.kube.client import ApiError, KubeClient

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class CliError(Exception):
    """A failure explained in one sentence; the command prints it and exits 1."""


@dataclass
class Connection:
    client: KubeClient
    namespace: str


def _context_namespace(kubeconfig: str | None, context: str | None) -> str | None:
    """The namespace the chosen context names; raises CliError when the context does not exist.

    Returns None when there is no kubeconfig at all (the in-cluster case).
    """
    files = [Path(p) for p in access.kubeconfig_paths(kubeconfig)]
    where = os.pathsep.join(str(p) for p in files)
    if kubeconfig is None and not any(p.exists() for p in files):
        return None
    try:
        config = access.merged([p for p in files if p.exists()] if kubeconfig is None else files)
    except access.AccessError as error:
        raise CliError(str(error)) from None
    contexts: list[dict[str, Any]] = config["contexts"]
    names = [str(c["name"]) for c in contexts]
    wanted = context if context is not None else config.get("current-context")
    chosen = next((c for c in contexts if c["name"] == wanted), None)
    if wanted is None:
        raise CliError(f"kubeconfig {where} sets no current-context; pass --context")
    if chosen is None:
        raise CliError(
            f"context {wanted} not found in kubeconfig {where} (contexts: {', '.join(names) or 'none'})"
        )
    namespace = (chosen.get("context") or {}).get("namespace")
    return str(namespace) if namespace else "default"


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Connection:
    """A client for the chosen context and the namespace commands act in."""
    context_namespace = _context_namespace(kubeconfig, context)
    try:
        client = KubeClient.from_environment(kubeconfig, context)
    except Exception as error:  # the loaders raise several unrelated types for a bad or absent config
        raise CliError(f"cannot load a Kubernetes configuration: {error}") from None
    client.timeout = 15.0
    if context_namespace is None and IN_CLUSTER_NAMESPACE.exists():
        context_namespace = IN_CLUSTER_NAMESPACE.read_text().strip()
    return Connection(client, namespace or context_namespace or "default")


def explain(error: Exception, client: KubeClient | None = None, what: str = "") -> CliError:
    """One sentence for an API error or a connection failure."""
    if isinstance(error, CliError):
        return error
    if isinstance(error, ApiError):
        if error.status == 403:
            return CliError(f"forbidden: {error.message}")
        if error.status == 401:
            return CliError(f"unauthorized: the API server refused the credentials ({error.message})")
        if error.status == 404 and what:
            return CliError(f"{what} not found")
        return CliError(f"the API server answered {error.status} {error.reason}: {error.message}")
    if isinstance(error, requests.RequestException):
        server = client.server if client is not None else "the API server"
        kind = "timed out" if isinstance(error, requests.Timeout) else "is unreachable"
        return CliError(f"the API server at {server} {kind}: {type(error).__name__}")
    return CliError(str(error))
