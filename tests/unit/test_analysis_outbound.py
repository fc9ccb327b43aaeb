"""The outbound module over real sockets on 127.0.0.1: where calls go, how long they take, what they read."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from modeldeploy.analysis.outbound import REFUSED, TIMEOUT, EgressPolicy, Outbound, OutboundError

LOOPBACK = Outbound(EgressPolicy.parse(["127.0.0.0/8"]))


class Server:
    """A local HTTP server whose handler is ``handle(request_handler)``; counts the requests it got."""

    def __init__(self, handle: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.requests.append({"path": self.path, "host": self.headers["Host"]})
                handle(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/x"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer(
    status: int = 200, body: bytes = b"ok", headers: dict[str, str] | None = None
) -> Callable[..., None]:
    def handle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return handle


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[..., None]], Server]]:
    servers: list[Server] = []

    def start(handle: Callable[..., None]) -> Server:
        servers.append(Server(handle))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_an_allowed_call_returns_status_and_body(serve: Callable[..., Server]) -> None:
    server = serve(answer(200, b"hello"))
    result = LOOPBACK.request("GET", server.url, deadline=5, max_body=100)
    assert (result.status, result.body, result.ok) == (200, b"hello", True)


@pytest.mark.parametrize("allow", [[], ["0.0.0.0/0"], ["10.0.0.0/8"], ["localhost"]])
def test_loopback_is_refused_unless_listed_as_loopback(
    serve: Callable[..., Server], allow: list[str]
) -> None:
    server = serve(answer())
    with pytest.raises(OutboundError) as refused:
        Outbound(EgressPolicy.parse(allow)).request("GET", server.url, deadline=5, max_body=100)
    assert refused.value.kind == REFUSED and "loopback" in refused.value.detail
    assert server.requests == []


@pytest.mark.parametrize("address", ["169.254.169.254", "fe80::1", "0.0.0.0", "::ffff:169.254.169.254"])
def test_link_local_and_unspecified_addresses_are_refused_even_when_everything_is_allowed(
    address: str,
) -> None:
    outbound = Outbound(
        EgressPolicy.parse(["0.0.0.0/0", "::/0", "metadata.internal"]),
        resolve=lambda host, port, **_: [(0, 0, 0, "", (address, port))],
    )
    with pytest.raises(OutboundError) as refused:
        outbound.request("GET", "http://metadata.internal/latest/meta-data/", deadline=1, max_body=100)
    assert refused.value.kind == REFUSED


def test_the_api_server_is_refused_even_where_loopback_is_allowed(serve: Callable[..., Server]) -> None:
    server = serve(answer())
    api = [("127.0.0.1", server.port)]
    with pytest.raises(OutboundError) as refused:
        Outbound(EgressPolicy.parse(["127.0.0.0/8"], api)).request("GET", server.url, deadline=5, max_body=9)
    assert "API server" in refused.value.detail and server.requests == []
    allowed = Outbound(EgressPolicy.parse(["127.0.0.0/8", "apiserver"], api))
    assert allowed.request("GET", server.url, deadline=5, max_body=9).status == 200


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(
    serve: Callable[..., Server],
) -> None:
    server = serve(answer())
    lookups: list[str] = []

    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        # a rebinding resolver: the first answer is checked; a second lookup would give the metadata address
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "169.254.169.254"
        return [(0, 0, 0, "", (address, port))]

    outbound = Outbound(EgressPolicy.parse(["127.0.0.1/32"]), resolve=resolve)
    result = outbound.request("GET", f"http://prom.test:{server.port}/q", deadline=5, max_body=9)
    assert result.status == 200 and lookups == ["prom.test"]
    assert server.requests == [{"path": "/q", "host": f"prom.test:{server.port}"}]


def test_a_refused_first_address_falls_back_to_an_allowed_one(serve: Callable[..., Server]) -> None:
    server = serve(answer())
    outbound = Outbound(
        EgressPolicy.parse(["127.0.0.0/8"]),
        resolve=lambda host, port, **_: [
            (0, 0, 0, "", ("169.254.169.254", port)),
            (0, 0, 0, "", ("127.0.0.1", port)),
        ],
    )
    assert outbound.request("GET", f"http://x.test:{server.port}/", deadline=5, max_body=9).status == 200


def test_host_names_in_the_allow_list_match_exactly_or_by_suffix() -> None:
    policy = EgressPolicy.parse(["hooks.acme.io", "*.svc.cluster.local"])
    public = EgressPolicy.parse([]).refusal
    assert policy.refusal("hooks.acme.io", _ip("203.0.113.7"), 443) is None
    assert policy.refusal("prom.monitoring.svc.cluster.local", _ip("203.0.113.7"), 443) is None
    assert policy.refusal("evil-hooks.acme.io", _ip("203.0.113.7"), 443) == "not in the allow-list"
    assert public("anything", _ip("203.0.113.7"), 443) == "not in the allow-list"


def _ip(text: str) -> Any:
    import ipaddress

    return ipaddress.ip_address(text)


def test_a_malformed_allow_entry_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="egress allow entry"):
        EgressPolicy.parse(["http://10.0.0.0/8"])


def test_redirects_are_not_followed(serve: Callable[..., Server]) -> None:
    target = serve(answer(200, b"secret"))
    server = serve(answer(302, b"", {"Location": target.url}))
    result = LOOPBACK.request("GET", server.url, deadline=5, max_body=100)
    assert (result.status, result.error_class) == (302, "HTTP 302 (redirects are not followed)")
    assert target.requests == []


def test_an_answer_over_the_cap_is_refused_without_being_read_whole(serve: Callable[..., Server]) -> None:
    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")  # no Content-Length to refuse early
        handler.end_headers()
        chunk = b"x" * 65536
        try:
            for _ in range(1024):  # 64 MiB
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            return

    server = serve(huge)
    started = time.monotonic()
    with pytest.raises(OutboundError, match="answer larger than 1048576 bytes"):
        LOOPBACK.request("GET", server.url, deadline=10, max_body=1024 * 1024)
    assert time.monotonic() - started < 2


def test_a_declared_oversized_answer_is_refused_before_reading(serve: Callable[..., Server]) -> None:
    server = serve(answer(200, b"x" * 5000))
    with pytest.raises(OutboundError, match="answer larger than 1000 bytes"):
        LOOPBACK.request("GET", server.url, deadline=5, max_body=1000)


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_the_deadline_is_total_not_per_read(serve: Callable[..., Server], phase: str) -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        try:
            if phase == "headers":
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(0.1)
            handler.send_response(200)
            handler.send_header("Content-Length", "100")
            handler.end_headers()
            for _ in range(100):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.1)  # one byte every 0.1 s: no single read ever times out
        except OSError:
            return

    server = serve(trickle)
    started = time.monotonic()
    with pytest.raises(OutboundError) as late:
        LOOPBACK.request("GET", server.url, deadline=1.0, max_body=1000)
    assert late.value.kind == TIMEOUT
    assert 0.9 < time.monotonic() - started < 1.6


def test_nothing_listening_is_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OutboundError) as refused:
        LOOPBACK.request("GET", f"http://127.0.0.1:{port}/", deadline=2, max_body=9)
    assert refused.value.kind == "connection refused"


def test_only_http_urls_are_called() -> None:
    with pytest.raises(OutboundError, match="invalid URL"):
        LOOPBACK.request("GET", "file:///etc/passwd", deadline=1, max_body=9)
