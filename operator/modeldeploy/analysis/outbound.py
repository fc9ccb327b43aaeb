"""Every HTTP call the operator makes on a tenant's behalf, under the admin's rules.

Prometheus queries, the retrain webhook and warm-up requests go to addresses
that tenants write (or that are derived from what they write), with the
operator's network position. So each call, here and nowhere else:

- **goes only where the egress policy permits**, checked on the addresses the
  host name *resolves to*, and the connection is made to the very address that
  was checked (no second lookup, so DNS rebinding cannot swap it);
- **never reaches loopback, link-local (cloud metadata), unspecified or
  multicast addresses, nor the Kubernetes API server**, unless the admin lists
  them explicitly (a CIDR inside that range, or ``apiserver``); a broad
  ``0.0.0.0/0`` does not count;
- **follows no redirect**: a 3xx is the answer, reported as ``HTTP 302``;
- **has a total deadline**: connect, TLS, headers and body together, enforced
  by a watchdog that shuts the socket, so an answer trickling one byte a
  second stops at the deadline, not after it;
- **reads a capped body**, streamed and abandoned past the cap, so a 64 MiB
  answer costs at most the cap in memory;
- **fails with a short error class** (``timeout``, ``refused by egress
  policy``, ``connection refused``, ``TLS error``, ...), never with the body or
  the URL, because errors end up in status that everyone with ``view`` reads.

:class:`Outbound` is immutable and holds no connection, so one instance may be
shared by any number of threads (reconcile workers, a warm-up pool).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

REFUSED = "refused by egress policy"
TIMEOUT = "timeout"

API_SERVER = "apiserver"
"""The allow-list entry that permits calls to the Kubernetes API server (never the default)."""

ALWAYS_REFUSED: tuple[tuple[str, IpNetwork], ...] = (
    ("loopback", ipaddress.ip_network("127.0.0.0/8")),
    ("loopback", ipaddress.ip_network("::1/128")),
    ("link-local", ipaddress.ip_network("169.254.0.0/16")),
    ("link-local", ipaddress.ip_network("fe80::/10")),
    ("unspecified", ipaddress.ip_network("0.0.0.0/8")),
    ("unspecified", ipaddress.ip_network("::/128")),
    ("multicast", ipaddress.ip_network("224.0.0.0/4")),
    ("multicast", ipaddress.ip_network("ff00::/8")),
)
"""Ranges refused unless an allow-list CIDR *inside* the range names them (IPv4-mapped
IPv6 addresses are checked as the IPv4 address they carry)."""

IN_CLUSTER_DEFAULT = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
"""The allow-list when the admin gives none: private addresses, where in-cluster Services live."""


class OutboundError(Exception):
    """A call that produced no answer; ``kind`` is the short class put into status."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail
        """For the operator's log only (may name the host); never copied into status."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_class(self) -> str:
        """``HTTP 503``; for a 3xx, also that the redirect was not followed."""
        if 300 <= self.status < 400:
            return f"HTTP {self.status} (redirects are not followed)"
        return f"HTTP {self.status}"


def _ip(text: str) -> IpAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class EgressPolicy:
    """Where outbound calls may go: CIDRs and host names the admin allows, minus what is always refused.

    ``allow`` entries: a CIDR or address (``10.0.0.0/8``, ``203.0.113.7``), a host
    name (``hooks.acme.io``) or a suffix (``*.svc.cluster.local``), or
    ``apiserver``. A host-name entry matches the URL's host; the addresses it
    resolves to must still not be always-refused ones.
    """

    networks: tuple[IpNetwork, ...] = ()
    hosts: tuple[str, ...] = ()
    allow_api_server: bool = False
    api_server: frozenset[tuple[IpAddress, int]] = frozenset()

    @classmethod
    def parse(cls, allow: Iterable[str], api_server: Iterable[tuple[str, int]] = ()) -> EgressPolicy:
        """The policy for ``allow`` entries; raises ValueError naming a malformed one."""
        networks: list[IpNetwork] = []
        hosts: list[str] = []
        allow_api_server = False
        for raw in allow:
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == API_SERVER:
                allow_api_server = True
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.removeprefix("*.")
            if not name or "/" in name or ":" in name or "*" in name:
                raise ValueError(f"egress allow entry {raw!r}: not a CIDR, host name, *.suffix or apiserver")
            hosts.append(entry)
        endpoints = frozenset((_ip(ip), port) for ip, port in api_server)
        return cls(tuple(networks), tuple(hosts), allow_api_server, endpoints)

    def refusal(self, host: str, address: IpAddress, port: int) -> str | None:
        """Why a connection to ``address``:``port`` (resolved from ``host``) is refused, or None."""
        if (address, port) in self.api_server and not self.allow_api_server:
            return "the Kubernetes API server"
        for label, special in ALWAYS_REFUSED:
            if address.version == special.version and address in special:
                listed = any(
                    net.version == special.version and address in net and net.subnet_of(special)  # type: ignore[arg-type]
                    for net in self.networks
                )
                return None if listed else f"a {label} address"
        if any(address.version == net.version and address in net for net in self.networks):
            return None
        if self._host_listed(host):
            return None
        return "not in the allow-list"

    def _host_listed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for entry in self.hosts:
            if entry.startswith("*."):
                if host.endswith(entry[1:]):
                    return True
            elif host == entry:
                return True
        return False


@dataclass(frozen=True)
class Outbound:
    """Makes calls under one :class:`EgressPolicy`; share it freely between threads."""

    policy: EgressPolicy = field(default_factory=lambda: EgressPolicy.parse(IN_CLUSTER_DEFAULT))
    resolve: object = None
    """A replacement for ``socket.getaddrinfo`` (tests); None for the real one."""

    def request(
        self,
        method: str,
        url: str,
        *,
        deadline: float,
        max_body: int,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        verify: bool = True,
        ca_file: str | None = None,
    ) -> Answer:
        """One call, finished within ``deadline`` seconds in total; raises :class:`OutboundError`."""
        finish = time.monotonic() + deadline
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutboundError("invalid URL", "only http:// and https:// URLs with a host")
        host = parts.hostname
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as error:
            raise OutboundError("invalid URL", str(error)) from None
        address = self._checked_address(host, port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = port == (443 if parts.scheme == "https" else 80)
        authority = f"[{host}]" if ":" in host else host
        sent = {"Host": authority if default_port else f"{authority}:{port}", "User-Agent": "modeldeploy"}
        sent.update(headers or {})
        context = _tls_context(verify, ca_file) if parts.scheme == "https" else None
        connection = _PinnedConnection(host, address, port, context, _remaining(finish))
        watchdog = threading.Timer(_remaining(finish), connection.abort)
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_body:
                raise OutboundError(f"answer larger than {max_body} bytes")
            data = _read_capped(response, max_body)
            if connection.aborted:  # the watchdog cut the answer short: it is not an answer
                raise OutboundError(TIMEOUT, f"after {deadline:g}s")
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        except OutboundError:
            raise
        except ssl.SSLError as error:
            raise OutboundError("TLS error", str(error)) from None
        except (OSError, http.client.HTTPException) as error:
            if time.monotonic() >= finish or isinstance(error, TimeoutError):
                raise OutboundError(TIMEOUT, f"after {deadline:g}s") from None
            if isinstance(error, ConnectionRefusedError):
                raise OutboundError("connection refused") from None
            raise OutboundError("connection failed", type(error).__name__) from None
        finally:
            watchdog.cancel()
            connection.close()

    def _checked_address(self, host: str, port: int) -> IpAddress:
        lookup = self.resolve if callable(self.resolve) else socket.getaddrinfo
        try:
            infos = lookup(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise OutboundError("DNS lookup failed", str(error)) from None
        reasons = []
        for info in infos:
            address = _ip(str(info[4][0]))
            reason = self.policy.refusal(host, address, port)
            if reason is None:
                return address
            reasons.append(f"{address}: {reason}")
        raise OutboundError(REFUSED, f"{host}:{port} -> " + "; ".join(reasons))


def _remaining(finish: float) -> float:
    left = finish - time.monotonic()
    if left <= 0:
        raise OutboundError(TIMEOUT)
    return left


def _tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _read_capped(response: http.client.HTTPResponse, max_body: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read1(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_body:
            raise OutboundError(f"answer larger than {max_body} bytes")
        chunks.append(chunk)


class _PinnedConnection(http.client.HTTPConnection):
    """A connection to an address checked beforehand; TLS still verifies the host *name*."""

    def __init__(
        self, host: str, address: IpAddress, port: int, context: ssl.SSLContext | None, timeout: float
    ) -> None:
        super().__init__(str(address), port, timeout=timeout)
        self._server_name = host
        self._context = context
        self._raw: socket.socket | None = None
        self._aborted = threading.Event()

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self._raw = raw
        if self._aborted.is_set():
            raw.close()
            raise TimeoutError
        self.sock = (
            self._context.wrap_socket(raw, server_hostname=self._server_name) if self._context else raw
        )

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    def abort(self) -> None:
        """Called by the watchdog at the deadline: whatever is blocked on the socket returns now."""
        self._aborted.set()
        raw = self._raw
        if raw is not None:
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_RDWR)
