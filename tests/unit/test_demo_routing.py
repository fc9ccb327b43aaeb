"""The demo proxy's routing decisions: pure functions of the operator's HTTPRoute and Services."""

from __future__ import annotations

from collections import Counter

import pytest

from modeldeploy_dev.demo.routing import choose, mirrored, parse_route, service_revisions

pytestmark = pytest.mark.unit


def test_choose_splits_draws_in_proportion_to_the_weights() -> None:
    backends = [("digits", 75), ("digits-candidate", 25)]
    picks = Counter(choose(backends, i / 1000) for i in range(1000))
    assert picks == {"digits": 750, "digits-candidate": 250}


def test_choose_never_picks_a_zero_weight_backend_and_none_without_weight() -> None:
    assert {choose([("digits", 100), ("digits-candidate", 0)], i / 100) for i in range(100)} == {"digits"}
    assert choose([], 0.5) is None
    assert choose([("digits", 0)], 0.5) is None


def test_mirror_percent_is_the_share_of_draws_copied() -> None:
    assert sum(mirrored(30, i / 1000) for i in range(1000)) == 300
    assert not any(mirrored(0, i / 100) for i in range(100))
    assert all(mirrored(100, i / 100) for i in range(100))


def test_parse_route_reads_weights_and_the_request_mirror_filter() -> None:
    route = {
        "spec": {
            "rules": [
                {
                    "backendRefs": [{"name": "digits", "port": 80, "weight": 100}],
                    "filters": [
                        {
                            "type": "RequestMirror",
                            "requestMirror": {
                                "backendRef": {"name": "digits-candidate", "port": 80},
                                "percent": 40,
                            },
                        }
                    ],
                }
            ]
        }
    }
    assert parse_route(route) == ((("digits", 100),), "digits-candidate", 40)
    assert parse_route(None) == ((), None, 0)


def test_service_revisions_follow_each_selector() -> None:
    services = [
        {"metadata": {"name": "digits"}, "spec": {"selector": {"modeldeploy.io/revision": "digits-1"}}},
        {"metadata": {"name": "digits-candidate"}, "spec": {"selector": {"modeldeploy.io/revision": "d-2"}}},
        {"metadata": {"name": "kubernetes"}, "spec": {}},
    ]
    assert service_revisions(services) == {"digits": "digits-1", "digits-candidate": "d-2"}
