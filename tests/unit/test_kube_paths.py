"""The API client builds paths only from valid names: no reference leaves its namespace."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modeldeploy.kube.client import InvalidNameError, KubeClient, check_path_segment
from modeldeploy.kube.kinds import CONFIG_MAP, SECRET


def test_a_secret_name_is_one_segment_in_its_own_namespace() -> None:
    assert SECRET.path("team-a", "prometheus-token") == "/api/v1/namespaces/team-a/secrets/prometheus-token"


@pytest.mark.parametrize(
    "name",
    [
        "../../kube-system/secrets/admin-token",
        "kube-system/admin-token",
        "..",
        ".",
        "token%2F..",
        "",
        "a\nb",
        "x" * 254,
    ],
)
def test_a_name_that_is_not_one_path_segment_is_refused_before_any_request(name: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid name"):
        SECRET.path("team-a", name)


@pytest.mark.parametrize("namespace", ["kube-system/secrets", "..", "Team-A", "team.a", ""])
def test_a_namespace_that_is_not_a_dns_label_is_refused(namespace: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid namespace"):
        CONFIG_MAP.path(namespace or "-", "payloads")


def test_an_unknown_subresource_is_refused() -> None:
    with pytest.raises(InvalidNameError, match="invalid subresource"):
        SECRET.path("team-a", "token", "../../secrets")


@given(st.text(min_size=1, max_size=80))
def test_no_accepted_name_adds_a_path_segment(name: str) -> None:
    try:
        check_path_segment(name)
    except InvalidNameError:
        return
    path = SECRET.path("team-a", name)
    assert path.count("/") == "/api/v1/namespaces/team-a/secrets/x".count("/")
    assert path.rsplit("/", 1)[1] != ".."


def test_the_client_makes_no_request_for_an_invalid_name() -> None:
    class Refusing(KubeClient):
        def request(self, *args: object, **kwargs: object) -> object:
            raise AssertionError("a request was made")

    client = Refusing.__new__(Refusing)
    with pytest.raises(InvalidNameError):
        client.get(SECRET, "team-a", "kube-system/admin-token")
