"""Certificates and keys for the local control plane.

A real API server insists on TLS and on client identities, so we make them the
way kubeadm does, only smaller: one CA, a serving certificate for 127.0.0.1 and
localhost, a client certificate per component (the admin's is in group
system:masters; each control-plane component gets its own well-known user so
that RBAC treats it as in a real cluster), and the key pair that signs and
verifies ServiceAccount tokens.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)
FIRST_SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service's ClusterIP in SERVICE_CIDR 10.96.0.0/16

# Client identities: (file stem, common name, organisation).
CLIENTS = (
    ("admin", "modeldeploy-admin", "system:masters"),
    ("controller-manager", "system:kube-controller-manager", None),
    ("scheduler", "system:kube-scheduler", None),
    ("kwok", "modeldeploy-kwok", "system:masters"),
    # The operator under test gets an identity of its own, so that the audit log
    # tells its requests apart from the tests' kubectl calls.
    ("operator", "modeldeploy-operator", "system:masters"),
    # The benchmark's peer controllers, each under its own name in the audit log too.
    ("argo-rollouts", "argo-rollouts-controller", "system:masters"),
    ("flagger", "flagger", "system:masters"),
    # Prometheus's Kubernetes service discovery: may get, list and watch pods (cluster.py's RBAC).
    ("prometheus", "modeldeploy-prometheus", None),
)


@dataclass(frozen=True)
class Pki:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def service_account_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def service_account_pub(self) -> Path:
        return self.directory / "sa.pub"

    def client_cert(self, who: str) -> Path:
        return self.directory / f"{who}.crt"

    def client_key(self, who: str) -> Path:
        return self.directory / f"{who}.key"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        parts.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(parts)


def _sign(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


# The real node's identities (only made when the cluster has one): the kubelet as a
# node (the Node authorizer reads its name from the CN), kube-proxy as the user the
# default system:node-proxier binding names, and the API server as a client of the kubelet.
NODE_CLIENTS = (
    ("kube-proxy", "system:kube-proxy", None),
    # The node's cluster DNS (cluster_dns.py): may list and watch Services, EndpointSlices, Namespaces.
    ("coredns", "modeldeploy-coredns", None),
    ("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"),
    # The API server's identity towards aggregated APIs (metrics-server), checked by them
    # against --requestheader-client-ca-file and --requestheader-allowed-names.
    ("front-proxy-client", "front-proxy-client", None),
)


def create_pki(directory: Path, node: tuple[str, str] | None = None) -> Pki:
    """Write a fresh CA, serving and client certificates, and the SA key pair.

    With node=(name, ip), the API server's certificate also names that IP and the
    first Service IP (pods reach it through the `kubernetes` Service), and the real
    node's certificates are made: see NODE_CLIENTS, plus the kubelet's client
    certificate (`kubelet-client`) and its serving certificate (`kubelet-serving`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    now = dt.datetime.now(dt.UTC)

    ca_key = _key()
    ca_name = _name("modeldeploy-local-ca")
    ca = (
        _sign(ca_name, ca_key.public_key(), ca_name, ca_key, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key, directory / "ca.key")

    serving_key = _key()
    serving = (
        _sign(_name("kube-apiserver"), serving_key.public_key(), ca_name, ca_key, now)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes"),
                    x509.DNSName("kubernetes.default"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.DNSName("kubernetes.default.svc.cluster.local"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    *(
                        x509.IPAddress(ipaddress.ip_address(address))
                        for address in ((node[1], FIRST_SERVICE_IP) if node else ())
                    ),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    _write_key(serving_key, pki.serving_key)

    clients = list(CLIENTS)
    if node is not None:
        clients += [*NODE_CLIENTS, ("kubelet-client", f"system:node:{node[0]}", "system:nodes")]
    for who, common_name, organisation in clients:
        key = _key()
        cert = (
            _sign(_name(common_name, organisation), key.public_key(), ca_name, ca_key, now)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pki.client_cert(who).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, pki.client_key(who))

    if node is not None:
        name, address = node
        kubelet_key = _key()
        kubelet = (
            _sign(
                _name(f"system:node:{name}", "system:nodes"), kubelet_key.public_key(), ca_name, ca_key, now
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(address))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pki.client_cert("kubelet-serving").write_bytes(kubelet.public_bytes(serialization.Encoding.PEM))
        _write_key(kubelet_key, pki.client_key("kubelet-serving"))

    sa_key = _key()
    _write_key(sa_key, pki.service_account_key)
    pki.service_account_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki
