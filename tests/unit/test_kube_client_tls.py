"""The API client's TLS, on a real TLS server on 127.0.0.1: the CA and the client certificate are
loaded once, and still verify the server (its CA, its name) and present the operator's identity."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modeldeploy.kube.access import Access
from modeldeploy.kube.client import KubeClient
from modeldeploy_dev.pki import Pki, create_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return create_pki(tmp_path_factory.mktemp("pki"))


def serve(cert: Path, key: Path, client_ca: Path) -> tuple[ThreadingHTTPServer, list[str]]:
    """An HTTPS server that insists on a client certificate of client_ca; the names it saw."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            peer = self.connection.getpeercert()  # type: ignore[attr-defined]
            seen.append(dict(part[0] for part in peer["subject"])["commonName"])
            content = json.dumps({"kind": "Namespace", "metadata": {"name": "default"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            return

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture
def apiserver(pki: Pki) -> Iterator[tuple[str, list[str]]]:
    server, seen = serve(pki.serving_cert, pki.serving_key, pki.ca_cert)
    yield f"https://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def client(host: str, ca: Path, pki: Pki) -> KubeClient:
    access = Access(
        host=host,
        ssl_ca_cert=str(ca),
        cert_file=str(pki.client_cert("operator")),
        key_file=str(pki.client_key("operator")),
    )
    return KubeClient(access, timeout=5)


def test_requests_present_the_client_certificate_and_check_no_file_after_the_first(
    pki: Pki, apiserver: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    host, seen = apiserver
    api = client(host, pki.ca_cert, pki)
    assert api.request("get", "GET", "/api/v1/namespaces/default")["metadata"]["name"] == "default"

    def no_stat(path: Any) -> bool:
        raise AssertionError(f"a request checked the file {path}")

    monkeypatch.setattr(os.path, "isdir", no_stat)
    monkeypatch.setattr(os.path, "exists", no_stat)
    for _ in range(3):
        api.request("get", "GET", "/api/v1/namespaces/default")
    assert seen == ["modeldeploy-operator"] * 4


def test_a_server_signed_by_another_ca_is_refused(pki: Pki, tmp_path: Path) -> None:
    other = create_pki(tmp_path / "other")
    server, seen = serve(other.serving_cert, other.serving_key, pki.ca_cert)
    try:
        api = client(f"https://127.0.0.1:{server.server_address[1]}", pki.ca_cert, pki)
        with pytest.raises(requests.exceptions.SSLError):
            api.request("get", "GET", "/api/v1/namespaces/default")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == []


def test_a_server_whose_certificate_names_another_host_is_refused(pki: Pki, tmp_path: Path) -> None:
    """Signed by the trusted CA, valid, but not for 127.0.0.1: the hostname check still runs."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "elsewhere.invalid")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("elsewhere.invalid")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "elsewhere.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "elsewhere.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server, seen = serve(tmp_path / "elsewhere.crt", tmp_path / "elsewhere.key", pki.ca_cert)
    try:
        api = client(f"https://127.0.0.1:{server.server_address[1]}", tmp_path / "elsewhere.crt", pki)
        with pytest.raises(requests.exceptions.SSLError, match=r"(?i)hostname|match"):
            api.request("get", "GET", "/api/v1/namespaces/default")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == []
