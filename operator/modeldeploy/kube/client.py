"""A small, counted REST client for the Kubernetes API.

Why not the generated client: the operator talks to a handful of kinds
(Deployments, Services, HTTPRoutes, VirtualServices, ConfigMaps, Events, its
own resource) with four verbs (get/list, server-side apply, merge patch,
delete), and it must be able to say exactly how many reads and writes it made:
"a reconcile of an object at rest makes zero write calls" is a promise we
measure. So this is plain HTTP over ``requests``, with the connection settings
(server, CA, client certificate, token) read by :mod:`modeldeploy.kube.access`
(which hands exec plugins and auth-providers to the ``kubernetes`` package's
own loader).

Every call is counted by verb in :data:`API_CALLS` (a Prometheus counter
exported with the operator's metrics).
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from prometheus_client import Counter
from requests.adapters import HTTPAdapter
from urllib3.util.ssl_ import create_urllib3_context

from modeldeploy.kube import access

FIELD_MANAGER = "modeldeploy"
HANDOVER_FIELD_MANAGER = "modeldeploy-handover"
"""Writes only a Deployment's starting replica count, once, when its HPA is to own the count: the
operator's own apply never claims the field, so leaving it out never resets it."""

API_CALLS = Counter(
    "modeldeploy_kube_api_requests_total",
    "Requests the operator made to the Kubernetes API server, by verb and outcome.",
    ["verb", "code"],
)

WRITE_VERBS = frozenset({"apply", "patch", "create", "delete"})


class ApiError(Exception):
    """An error answer from the API server; ``status`` is the HTTP code, ``reason`` its Status reason."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        """Seconds the server asked us to wait (its ``Retry-After`` header), if it said."""

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def namespace_terminating(self) -> bool:
        """A create refused because its namespace is being deleted (NamespaceLifecycle admission)."""
        return self.status == 403 and "being terminated" in self.message


def parse_retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3), else None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the REST API."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def base(self) -> str:
        return f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
        """The REST path; refuses a namespace, name or subresource that is not a valid name.

        A name that holds ``/`` (or ``..``) would address another namespace or
        resource with the operator's rights, so it is refused before any request
        is made, as client-go's request builder does.
        """
        parts = [self.base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{quote(check_namespace(namespace), safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(check_path_segment(name, "name"), safe=""))
        if subresource:
            if subresource not in SUBRESOURCES:
                raise InvalidNameError(f"invalid subresource {subresource!r}: one of {sorted(SUBRESOURCES)}")
            parts.append(subresource)
        return "/".join(parts)


SUBRESOURCES = frozenset({"status", "scale", "finalizers"})

_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_NAME_MAX_LENGTH = 253


class InvalidNameError(ValueError):
    """A namespace or name that cannot be put into an API path; no request was made."""


def check_namespace(namespace: str) -> str:
    """``namespace`` if it is an RFC 1123 label (what Kubernetes requires of namespaces), else raise."""
    if len(namespace) > 63 or not _NAMESPACE.fullmatch(namespace):
        raise InvalidNameError(f"invalid namespace {namespace!r}: must be a DNS-1123 label")
    return namespace


def check_path_segment(name: str, what: str = "name") -> str:
    """``name`` if it can be one path segment, else raise (client-go's ``IsValidPathSegmentName``).

    Refused: empty, ``.`` and ``..``, anything holding ``/`` or ``%``, control
    characters, and names longer than any Kubernetes object name.
    """
    problem = None
    if not name or len(name) > _NAME_MAX_LENGTH:
        problem = f"must be 1 to {_NAME_MAX_LENGTH} characters"
    elif name in (".", ".."):
        problem = "may not be '.' or '..'"
    elif "/" in name or "%" in name:
        problem = "may not contain '/' or '%'"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        problem = "may not contain control characters"
    if problem:
        raise InvalidNameError(f"invalid {what} {name!r}: {problem}")
    return name


class Counts:
    """Calls made through one client, by verb (for tests and benchmarks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_verb: dict[str, int] = {}

    def add(self, verb: str) -> None:
        with self._lock:
            self.by_verb[verb] = self.by_verb.get(verb, 0) + 1

    @property
    def writes(self) -> int:
        return sum(n for verb, n in self.by_verb.items() if verb in WRITE_VERBS)

    @property
    def reads(self) -> int:
        return sum(n for verb, n in self.by_verb.items() if verb not in WRITE_VERBS)


class _LoadedTls(HTTPAdapter):
    """HTTPS with the CA and the client certificate loaded once, into one SSL context.

    Given file paths, requests checks them on every request (``os.path.isdir``
    of the CA bundle, ``os.path.exists`` of each certificate file), which is
    one to four system calls a request. A profile of the operator with 100
    canaries at once found those checks in 15 % of its busy samples.

    The context verifies the server as requests would (the CA, the hostname);
    a file changed after the session's first request is not read again, which
    requests' connection pools did not do either.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:  # (host, pool keywords): the stubs' TypedDicts say port is never None; it may be
        url = urlsplit(request.url or "")
        host = {"scheme": url.scheme.lower(), "host": url.hostname, "port": url.port}
        return host, {"ssl_context": self._context, "cert_reqs": "CERT_REQUIRED"}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        return None  # the context holds the CA and the client certificate


def _tls_context(ca_file: str, cert_file: str | None, key_file: str | None) -> ssl.SSLContext:
    """What requests would give urllib3 for this CA and client certificate, loaded once."""
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    context.load_verify_locations(cafile=ca_file)
    if cert_file and key_file:
        context.load_cert_chain(cert_file, key_file)
    return context


class KubeClient:
    """Synchronous; the operator calls it from worker threads."""

    def __init__(self, configuration: Any, timeout: float = 30.0) -> None:
        """``configuration``: an :class:`~modeldeploy.kube.access.Access`, or a kubernetes
        ``Configuration`` (the same attributes are read)."""
        self.configuration = configuration
        self.server = configuration.host.rstrip("/")
        self.timeout = timeout
        self.counts = Counts()
        self._local = threading.local()

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeClient:
        """Kubeconfig (explicit path, $KUBECONFIG or ~/.kube/config), else the in-cluster ServiceAccount."""
        return cls(access.load(kubeconfig, context))

    def kubernetes_configuration(self) -> Any:
        """The same access as a kubernetes ``Configuration``, for tools that use that library."""
        from kubernetes import client as k8s_client

        config = self.configuration
        if isinstance(config, k8s_client.Configuration):
            return config
        result = k8s_client.Configuration()
        result.host = config.host
        result.ssl_ca_cert = config.ssl_ca_cert
        result.verify_ssl = config.verify_ssl
        result.cert_file = config.cert_file
        result.key_file = config.key_file
        token = self.token()
        if token:
            result.api_key = {"authorization": f"Bearer {token}"}
        return result

    # --- plumbing --------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            config = self.configuration
            session.verify = (
                config.ssl_ca_cert if config.verify_ssl and config.ssl_ca_cert else config.verify_ssl
            )
            if config.cert_file and config.key_file:
                session.cert = (config.cert_file, config.key_file)
            if config.verify_ssl and config.ssl_ca_cert and self.server.startswith("https://"):
                context = _tls_context(config.ssl_ca_cert, config.cert_file, config.key_file)
                session.mount("https://", _LoadedTls(context))
            self._local.session = session
        return session

    def token(self) -> str | None:
        """The bearer token to send, bare (read again first where it rotates); None: none."""
        config = self.configuration
        if config.refresh_api_key_hook is not None:
            config.refresh_api_key_hook(config)
        token: str | None = config.api_key.get("BearerToken") or config.api_key.get("authorization")
        if token and token.lower().startswith("bearer "):
            token = token[7:]
        return token or None

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "modeldeploy"}
        token = self.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def request(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> Any:
        data = None if body is None else json.dumps(body)
        try:
            response = self._session().request(
                method,
                self.server + path,
                params=params,
                data=data,
                headers=self._headers(content_type if body is not None else None),
                timeout=self.timeout,
            )
        except requests.RequestException:
            API_CALLS.labels(verb=verb, code="error").inc()
            self.counts.add(verb)
            raise
        API_CALLS.labels(verb=verb, code=str(response.status_code)).inc()
        self.counts.add(verb)
        if response.status_code >= 400:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            try:
                status = response.json()
                if not isinstance(status, dict):
                    raise ValueError("not a Status object")
            except ValueError:
                raise ApiError(response.status_code, "", response.text[:500], retry_after) from None
            raise ApiError(
                response.status_code, status.get("reason", ""), status.get("message", ""), retry_after
            )
        return response.json() if response.content else None

    # --- verbs -----------------------------------------------------------------

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.request("get", "GET", kind.path(namespace, name))
        except ApiError as error:
            if error.not_found:
                return None
            raise
        return result

    def list_objects(
        self, kind: Kind, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Any]:
        return self.list_with_version(kind, namespace, label_selector)[0]

    def list_with_version(
        self, kind: Kind, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[Any], str]:
        """The items, and the list's resourceVersion (the point in time it shows)."""
        params = {"labelSelector": label_selector} if label_selector else None
        result = self.request("list", "GET", kind.path(namespace), params=params)
        return list(result.get("items", [])), str((result.get("metadata") or {}).get("resourceVersion", ""))

    def apply(
        self, kind: Kind, body: dict[str, Any], subresource: str = "", field_manager: str = FIELD_MANAGER
    ) -> dict[str, Any]:
        """Server-side apply with field manager ``modeldeploy`` (conflicts forced: we own these fields)."""
        meta = body["metadata"]
        result: dict[str, Any] = self.request(
            "apply",
            "PATCH",
            kind.path(meta.get("namespace"), meta["name"], subresource),
            params={"fieldManager": field_manager, "force": "true"},
            body=body,
            content_type="application/apply-patch+yaml",
        )
        return result

    def merge_patch(
        self, kind: Kind, namespace: str | None, name: str, patch: dict[str, Any], subresource: str = ""
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "patch",
            "PATCH",
            kind.path(namespace, name, subresource),
            params={"fieldManager": FIELD_MANAGER},
            body=patch,
            content_type="application/merge-patch+json",
        )
        return result

    def json_patch(self, kind: Kind, namespace: str | None, name: str, patch: list[dict[str, Any]]) -> Any:
        return self.request(
            "patch",
            "PATCH",
            kind.path(namespace, name),
            params={"fieldManager": FIELD_MANAGER},
            body=patch,
            content_type="application/json-patch+json",
        )

    def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "create",
            "POST",
            kind.path(body["metadata"].get("namespace")),
            params={"fieldManager": FIELD_MANAGER},
            body=body,
            content_type="application/json",
        )
        return result

    def delete(self, kind: Kind, namespace: str | None, name: str) -> bool:
        """Delete with background propagation; False when it was already gone."""
        try:
            self.request(
                "delete",
                "DELETE",
                kind.path(namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
                content_type="application/json",
            )
        except ApiError as error:
            if error.not_found:
                return False
            raise
        return True
