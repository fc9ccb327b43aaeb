"""A small local proxy that follows the operator's route: it stands in for a gateway or a mesh.

In a cluster, a Gateway API implementation (or Istio) reads the HTTPRoute the
operator writes and moves live traffic accordingly. The local control plane
has no data plane (kwok's pod and Service IPs are fake), so this proxy does
that job on 127.0.0.1:

- it re-reads the HTTPRoute and the Services every half second;
- a live request (any path not under ``/svc/``) goes to a Service chosen by
  the route's weights, then to the local server of the revision that Service
  selects; the answer comes from that revision only;
- with a RequestMirror filter, that percent of live requests is also copied to
  the mirror Service's revision in the background and its answer discarded;
- ``/svc/<namespace>/<service>/<path>`` reaches one Service directly: the
  operator's warm-up requests use it (``--service-url-template``).
"""

from __future__ import annotations

import http.client
import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import HTTPROUTE, SERVICE
from modeldeploy_dev.demo.routing import Route, choose, mirrored, parse_route, service_revisions

REFRESH_SECONDS = 0.5
UPSTREAM_TIMEOUT = 5.0
SERVED_BY = "X-Served-By"


def forward(port: int, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=UPSTREAM_TIMEOUT)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Proxy:
    """Follows ``name``'s HTTPRoute in ``namespace``; ``ports`` says where each revision's server listens."""

    def __init__(
        self, api: KubeClient, namespace: str, name: str, ports: Callable[[str], int | None]
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.ports = ports
        self.route = Route()
        self.served: Counter[str] = Counter()  # live answers by revision
        self.mirrored: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._mirror_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mirror")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="proxy", daemon=True),
            threading.Thread(target=self._follow, name="proxy-route", daemon=True),
        ]

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url_template(self) -> str:
        """What the operator's --service-url-template must be for warm-up to come through here."""
        return self.url + "/svc/{namespace}/{service}"

    def start(self) -> None:
        self.refresh()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._mirror_pool.shutdown(wait=False, cancel_futures=True)

    def refresh(self) -> None:
        route = self.api.get(HTTPROUTE, self.namespace, self.name)
        services = self.api.list_objects(SERVICE, self.namespace)
        backends, mirror, percent = parse_route(route)
        with self._lock:
            self.route = Route(backends, mirror, percent, service_revisions(services))

    def _follow(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            try:
                self.refresh()
            except Exception:  # the API server is briefly unreachable: keep the last route
                continue

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            return dict(self.served), dict(self.mirrored)

    # --- one request ----------------------------------------------------------------

    def live(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        with self._lock:
            route = self.route
        service = choose(route.backends, random.random())
        if service is None:
            return 503, b'{"error": "no route yet"}', ""
        revision = route.revision_of(service)
        port = self.ports(revision) if revision else None
        if revision is None or port is None:
            return 503, f'{{"error": "no ready server behind {service}"}}'.encode(), revision or ""
        if route.mirror and mirrored(route.mirror_percent, random.random()):
            self._mirror(route, route.mirror, method, path, body, headers)
        try:
            status, answer = forward(port, method, path, body, headers)
        except OSError as error:
            return 502, f'{{"error": "upstream {revision}: {error}"}}'.encode(), revision
        with self._lock:
            self.served[revision] += 1
        return status, answer, revision

    def direct(self, path: str, method: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        """``/svc/<namespace>/<service>/<rest>``: straight to the revision that Service selects."""
        parts = path.split("/", 4)
        if len(parts) < 4 or parts[2] != self.namespace:
            return 404, b'{"error": "unknown service"}', ""
        service, rest = parts[3], "/" + (parts[4] if len(parts) > 4 else "")
        with self._lock:
            revision = self.route.revision_of(service)
        port = self.ports(revision) if revision else None
        if revision is None or port is None:
            return 503, f'{{"error": "no ready server behind {service}"}}'.encode(), revision or ""
        try:
            status, answer = forward(port, method, rest, body, headers)
        except OSError as error:
            return 502, f'{{"error": "upstream {revision}: {error}"}}'.encode(), revision
        return status, answer, revision

    def _mirror(
        self, route: Route, service: str, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> None:
        revision = route.revision_of(service)
        port = self.ports(revision) if revision else None
        if revision is None or port is None:
            return

        def send() -> None:
            try:
                forward(port, method, path, body, headers)  # the answer is discarded
            except OSError:
                return
            with self._lock:
                self.mirrored[revision] += 1

        self._mirror_pool.submit(send)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower().startswith("x-modeldeploy")}
                if self.headers.get("Content-Type"):
                    headers["Content-Type"] = self.headers["Content-Type"]
                if self.path.startswith("/svc/"):
                    status, answer, revision = proxy.direct(self.path, self.command, body, headers)
                else:
                    status, answer, revision = proxy.live(self.command, self.path, body, headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                if revision:
                    self.send_header(SERVED_BY, revision)
                self.end_headers()
                self.wfile.write(answer)

            do_GET = _handle
            do_POST = _handle

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler
