"""How to reach the API server: a kubeconfig's credentials, or the in-cluster ServiceAccount.

Read here without the kubernetes client library. Importing that library loads
its generated models whole, 15 MB of the operator's memory (measured: 78 MB
after importing the operator with it, 63.5 MB without), for a server address,
a CA, a client certificate and a token. So the common cases are read here:

- **in a pod**: the ServiceAccount's token, CA and ``KUBERNETES_SERVICE_HOST``;
  the token is read again each minute, as the kubelet rotates a projected token;
- **a kubeconfig** (``--kubeconfig``, else ``$KUBECONFIG``, a list merged as
  kubectl merges it, else ``~/.kube/config``): the context's server, CA
  (file or data), ``insecure-skip-tls-verify``, and the user's client
  certificate and key (files or data), ``token`` or ``tokenFile``.

A user entry that asks for more (an exec plugin, an auth-provider) is handed to
the kubernetes library's own loader, imported only then, so every kubeconfig
kubectl accepts still works.

:class:`Access` has the attributes the client reads from a kubernetes
``Configuration`` (``host``, ``ssl_ca_cert``, ``verify_ssl``, ``cert_file``,
``key_file``, ``api_key``, ``refresh_api_key_hook``), so either serves.
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_SECONDS = 60.0


class AccessError(Exception):
    """No usable configuration: the message says which file or setting and what is wrong."""


@dataclass
class Access:
    host: str
    ssl_ca_cert: str | None = None
    verify_ssl: bool = True
    cert_file: str | None = None
    key_file: str | None = None
    api_key: dict[str, str] = field(default_factory=dict)
    refresh_api_key_hook: Callable[[Any], None] | None = None


def load(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """The kubeconfig's access (explicit path, ``$KUBECONFIG`` or ``~/.kube/config``), else in-cluster.

    Returns an :class:`Access`, or the kubernetes library's ``Configuration``
    for a user entry only that library can serve. A kubeconfig named
    explicitly must be usable; otherwise a missing one means in-cluster.
    """
    existing = [p for p in kubeconfig_paths(kubeconfig) if Path(p).is_file()]
    if kubeconfig and not existing:
        raise AccessError(f"kubeconfig {kubeconfig} not found")
    if not existing:
        return in_cluster()
    config = merged([Path(p) for p in existing])
    return from_kubeconfig(config, context, kubeconfig)


def kubeconfig_paths(kubeconfig: str | None = None) -> list[str]:
    """Where kubeconfigs are looked for: ``kubeconfig``, else ``$KUBECONFIG``'s list, else
    ``~/.kube/config``; ``~`` expanded (left as it is for a user without a home: Path.home()
    would raise, in a pod, before in-cluster access is tried)."""
    listed = os.environ.get("KUBECONFIG")
    if kubeconfig:
        paths = [kubeconfig]
    elif listed:
        paths = [p for p in listed.split(os.pathsep) if p]
    else:
        paths = [os.path.join("~", ".kube", "config")]
    return [os.path.expanduser(p) for p in paths]


def merged(paths: list[Path]) -> dict[str, Any]:
    """kubectl's merge: the first file to set current-context wins, and the first entry of each name.

    Relative file references are made absolute against the file they are written in.
    """
    result: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    seen: dict[str, set[str]] = {"clusters": set(), "users": set(), "contexts": set()}
    for path in paths:
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise AccessError(f"cannot read kubeconfig {path}: {error}") from None
        if not isinstance(document, dict):
            raise AccessError(f"kubeconfig {path} is not a mapping")
        if not result.get("current-context") and document.get("current-context"):
            result["current-context"] = document["current-context"]
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for entry in document.get(section) or []:
                name = entry.get("name") if isinstance(entry, dict) else None
                if not isinstance(name, str) or name in seen[section]:
                    continue
                seen[section].add(name)
                body = dict(entry.get(inner) or {})
                _absolute(body, path.parent)
                result[section].append({"name": name, inner: body})
    return result


def _absolute(body: dict[str, Any], base: Path) -> None:
    for key in ("certificate-authority", "client-certificate", "client-key", "tokenFile"):
        value = body.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            body[key] = str(base / value)


def _named(config: Mapping[str, Any], section: str, inner: str, name: str, where: str) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return dict(entry.get(inner) or {})
    raise AccessError(f"kubeconfig {where}: {inner} {name!r} not found")


def from_kubeconfig(config: Mapping[str, Any], context: str | None, where: str | None = None) -> Any:
    where = where or "(merged)"
    chosen = context or config.get("current-context")
    if not chosen:
        raise AccessError(f"kubeconfig {where}: no current-context; pass --context")
    ctx = _named(config, "contexts", "context", chosen, where)
    cluster = _named(config, "clusters", "cluster", str(ctx.get("cluster")), where)
    user = _named(config, "users", "user", str(ctx.get("user")), where) if ctx.get("user") else {}
    if any(key in user for key in ("exec", "auth-provider", "username")):
        return _library_loader(config, chosen)
    server = cluster.get("server")
    if not server:
        raise AccessError(f"kubeconfig {where}: cluster {ctx.get('cluster')!r} has no server")
    access = Access(host=str(server).rstrip("/"))
    access.verify_ssl = not cluster.get("insecure-skip-tls-verify", False)
    access.ssl_ca_cert = _file(cluster, "certificate-authority")
    access.cert_file = _file(user, "client-certificate")
    access.key_file = _file(user, "client-key")
    if user.get("token"):
        access.api_key["authorization"] = f"Bearer {user['token']}"
    elif user.get("tokenFile"):
        access.refresh_api_key_hook = _token_reader(Path(user["tokenFile"]))
        access.refresh_api_key_hook(access)
    return access


def _file(entry: Mapping[str, Any], key: str) -> str | None:
    """A file the entry names, or one written from its ``-data`` (base64), readable by us only."""
    data = entry.get(f"{key}-data")
    if data:
        try:
            content = base64.b64decode(data)
        except ValueError as error:
            raise AccessError(f"kubeconfig: {key}-data is not base64: {error}") from None
        return _private_file(content)
    value = entry.get(key)
    return str(value) if value else None


_DATA_DIR: list[str] = []


def _private_file(content: bytes) -> str:
    if not _DATA_DIR:
        _DATA_DIR.append(tempfile.mkdtemp(prefix="modeldeploy-kube-"))  # 0700
    fd, path = tempfile.mkstemp(dir=_DATA_DIR[0])  # 0600
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    return path


def _token_reader(path: Path) -> Callable[[Any], None]:
    """A hook that puts the token in ``path`` into the access, read again each TOKEN_REREAD_SECONDS."""
    read_at: list[float] = []

    def refresh(access: Any) -> None:
        now = time.monotonic()
        if read_at and now - read_at[0] < TOKEN_REREAD_SECONDS:
            return
        try:
            token = path.read_text().strip()
        except OSError as error:
            if not read_at:
                raise AccessError(f"cannot read token file {path}: {error}") from None
            return  # keep the token we have; the next request tries again
        access.api_key["authorization"] = f"Bearer {token}"
        read_at[:] = [now]

    return refresh


def in_cluster(root: Path = SERVICE_ACCOUNT, environ: Mapping[str, str] = os.environ) -> Access:
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise AccessError(
            "no kubeconfig found and not in a pod (KUBERNETES_SERVICE_HOST is not set): pass --kubeconfig"
        )
    if ":" in host:
        host = f"[{host}]"  # IPv6
    ca = root / "ca.crt"
    access = Access(host=f"https://{host}:{port}", ssl_ca_cert=str(ca) if ca.exists() else None)
    access.refresh_api_key_hook = _token_reader(root / "token")
    access.refresh_api_key_hook(access)
    return access


def _library_loader(config: Mapping[str, Any], context: str) -> Any:
    """The kubernetes library's loader, for what only it serves (exec plugins, auth-providers)."""
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    configuration = k8s_client.Configuration()
    k8s_config.load_kube_config_from_dict(  # type: ignore[no-untyped-call]
        dict(config), context=context, client_configuration=configuration
    )
    return configuration


@contextmanager
def without_kubernetes_models() -> Iterator[None]:
    """Import kopf inside this: it imports the kubernetes library (if installed) only to
    recognise that library's objects (in ``kopf.adopt`` and the like), which the operator never
    hands it; the library stays importable for whoever wants it afterwards."""
    blocked = "kubernetes" not in sys.modules
    if blocked:
        sys.modules["kubernetes"] = None  # type: ignore[assignment]  # an ImportError for kopf's try
    try:
        yield
    finally:
        if blocked and sys.modules.get("kubernetes", 0) is None:
            del sys.modules["kubernetes"]
