"""Reaching the API server without the kubernetes library: kubeconfig, $KUBECONFIG merges, in-cluster."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modeldeploy.kube import access
from modeldeploy.kube.access import Access, AccessError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def kubeconfig(cluster: dict[str, Any], user: dict[str, Any], current: str = "dev") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}}],
        "current-context": current,
    }


def test_certificates_given_as_data_are_written_to_files_only_we_can_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config",
        kubeconfig(
            {"server": "https://127.0.0.1:6443/", "certificate-authority-data": b64("CA")},
            {"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")},
        ),
    )
    found = access.load(str(path))
    assert isinstance(found, Access)
    assert (found.host, found.verify_ssl, found.api_key) == ("https://127.0.0.1:6443", True, {})
    assert found.ssl_ca_cert and found.cert_file and found.key_file
    assert [Path(f).read_text() for f in (found.ssl_ca_cert, found.cert_file, found.key_file)] == [
        "CA",
        "CERT",
        "KEY",
    ]
    assert oct(Path(found.key_file).stat().st_mode & 0o777) == "0o600"


def test_relative_files_are_read_from_the_kubeconfig_s_own_directory(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    path = write(
        tmp_path / "config",
        kubeconfig(
            {
                "server": "https://k:6443",
                "certificate-authority": "pki/ca.crt",
                "insecure-skip-tls-verify": True,
            },
            {"token": "s3cret"},
        ),
    )
    found = access.load(str(path))
    assert found.ssl_ca_cert == str(tmp_path / "pki" / "ca.crt")
    assert found.verify_ssl is False
    assert found.api_key == {"authorization": "Bearer s3cret"}


def test_a_token_file_is_read_again_as_it_rotates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    path = write(tmp_path / "config", kubeconfig({"server": "https://k"}, {"tokenFile": str(token)}))
    monkeypatch.setattr(access, "TOKEN_REREAD_SECONDS", 0.0)
    found = access.load(str(path))
    assert found.api_key == {"authorization": "Bearer first"}
    token.write_text("second\n")
    found.refresh_api_key_hook(found)
    assert found.api_key == {"authorization": "Bearer second"}
    token.unlink()
    found.refresh_api_key_hook(found)  # gone for a moment: the token we have is kept
    assert found.api_key == {"authorization": "Bearer second"}


def test_a_kubeconfig_list_merges_as_kubectl_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write(
        tmp_path / "a" / "config", kubeconfig({"server": "https://first", "certificate-authority": "ca"}, {})
    )
    second = kubeconfig({"server": "https://second"}, {"token": "t"}, current="other")
    second["contexts"].append({"name": "other", "context": {"cluster": "c", "user": "u"}})
    write(tmp_path / "b" / "config", second)
    monkeypatch.setenv(
        "KUBECONFIG", os.pathsep.join([str(first), str(tmp_path / "missing"), str(tmp_path / "b" / "config")])
    )
    found = access.load()
    # The first file's current-context, cluster and user win; the second only adds what is new.
    assert (found.host, found.ssl_ca_cert, found.api_key) == ("https://first", str(tmp_path / "a" / "ca"), {})
    assert access.load(context="other").host == "https://first"  # context "other" names cluster c: the first


def test_bad_kubeconfigs_are_named_with_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(AccessError, match=r"kubeconfig .*/nowhere not found"):
        access.load(str(tmp_path / "nowhere"))
    path = write(tmp_path / "config", kubeconfig({"server": "https://k"}, {}, current=""))
    with pytest.raises(AccessError, match="no current-context; pass --context"):
        access.load(str(path))
    with pytest.raises(AccessError, match="context 'prod' not found"):
        access.load(str(path), "prod")
    path = write(tmp_path / "config", kubeconfig({}, {}))
    with pytest.raises(AccessError, match="cluster 'c' has no server"):
        access.load(str(path))


def test_an_exec_plugin_is_served_by_the_kubernetes_library(tmp_path: Path) -> None:
    plugin = tmp_path / "credential"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": "from-the-plugin"},
    }
    plugin.write_text(f"#!{sys.executable}\nprint({json.dumps(json.dumps(credential))})\n")
    plugin.chmod(0o755)
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    path = write(tmp_path / "config", kubeconfig({"server": "https://k"}, exec_user))
    found = access.load(str(path))
    from kubernetes import client as k8s_client

    assert isinstance(found, k8s_client.Configuration)
    assert found.api_key["BearerToken"] == "Bearer from-the-plugin"


def test_in_a_pod_the_service_account_is_used(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("pod-token")
    (tmp_path / "ca.crt").write_text("CA")
    found = access.in_cluster(
        tmp_path, {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    )
    assert (found.host, found.ssl_ca_cert, found.api_key) == (
        "https://[fd00::1]:443",
        str(tmp_path / "ca.crt"),
        {"authorization": "Bearer pod-token"},
    )
    with pytest.raises(AccessError, match="KUBERNETES_SERVICE_HOST is not set"):
        access.in_cluster(tmp_path, {})


def test_the_operator_never_loads_the_kubernetes_library() -> None:
    """kopf would import it (15 MB more, its models) only to recognise objects the operator never gives it."""
    code = (
        "import sys, modeldeploy.cli.main, modeldeploy.handlers, kopf;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
    later = "import modeldeploy.cli.main, kubernetes.client; print(kubernetes.client.Configuration)"
    assert (
        "Configuration"
        in subprocess.run(  # and a tool that wants it later still gets it
            [sys.executable, "-c", later], capture_output=True, text=True, check=True
        ).stdout
    )


def test_a_user_without_a_home_directory_is_looked_for_in_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pod's user often has no home: looking for ~/.kube/config must not fail before in-cluster access."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # what it does when no home is found
    with pytest.raises(AccessError, match="not in a pod"):
        access.load()


@pytest.mark.parametrize(
    ("api_key", "token"),
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"authorization": "abc"}, "abc"),
        ({"BearerToken": "bearer abc"}, "abc"),  # the kubernetes library's exec loader's key
        ({}, None),
    ],
)
def test_the_client_sends_one_bare_token_however_it_was_stored(
    api_key: dict[str, str], token: str | None
) -> None:
    from modeldeploy.kube.client import KubeClient

    client = KubeClient(Access(host="https://k", api_key=api_key))
    assert client.token() == token
    assert client._headers(None).get("Authorization") == (f"Bearer {token}" if token else None)
