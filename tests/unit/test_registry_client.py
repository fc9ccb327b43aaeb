"""The MLflow registry client: which calls it makes, what the card keeps, how errors read.

The HTTP exchange is replaced by a fake of the outbound module (one method);
tests/integration/test_registry_mlflow.py runs the client against a real
``mlflow server``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fake_outbound import FakeOutbound

from modeldeploy.analysis.outbound import Answer, OutboundError
from modeldeploy.registry.mlflow import MAX_ENTRIES, MlflowRegistry, RegistryError, Report

pytestmark = pytest.mark.unit


def version(number: str, **extra: Any) -> dict[str, Any]:
    return {
        "model_version": {
            "name": "fraud",
            "version": number,
            "source": f"models:/m-{number}",
            "run_id": f"run{number}",
            "status": "READY",
            "description": "a fraud model",
            "tags": [{"key": "team", "value": "risk"}],
            **extra,
        }
    }


RUN = {
    "run": {
        "info": {"run_id": "run3"},
        "data": {
            "metrics": [{"key": "auc", "value": 0.93123456789}, {"key": "f1", "value": 0.8}],
            "params": [{"key": "C", "value": "1.0"}],
        },
        "inputs": {"dataset_inputs": [{"dataset": {"name": "cards-2026-10", "digest": "d1g"}}]},
    }
}


def registry(routes: dict[str, Any], status: int = 200) -> tuple[MlflowRegistry, FakeOutbound]:
    def respond(method: str, url: str, headers: Mapping[str, str] | None, body: bytes | None) -> Answer:
        path = urlsplit(url).path.removeprefix("/api/2.0/mlflow/")
        if path not in routes:
            return Answer(404, {}, json.dumps({"error_code": "ENDPOINT_NOT_FOUND"}).encode())
        return Answer(status, {}, json.dumps(routes[path]).encode())

    outbound = FakeOutbound(respond=respond)
    return MlflowRegistry("http://mlflow.test:5000/", outbound, token="t0k", timeout=3), outbound


def test_an_alias_resolves_to_its_version_uri_and_card_with_the_token_and_a_deadline() -> None:
    client, outbound = registry(
        {
            "registered-models/alias": version("3"),
            "runs/get": RUN,
            "model-versions/get-download-uri": {"artifact_uri": "file:///artifacts/3/model"},
        }
    )
    found = client.resolve("fraud", alias="challenger")
    assert (found.version, found.uri) == ("3", "file:///artifacts/3/model")
    assert found.card.metrics == {"auc": "0.931235", "f1": "0.8"}
    assert found.card.params == {"C": "1.0"} and found.card.tags == {"team": "risk"}
    assert (found.card.run_id, found.card.source, found.card.datasets) == (
        "run3",
        "models:/m-3",
        ["cards-2026-10@d1g"],
    )
    first = outbound.calls[0]
    assert parse_qs(urlsplit(first["url"]).query) == {"name": ["fraud"], "alias": ["challenger"]}
    assert first["headers"]["Authorization"] == "Bearer t0k" and first["deadline"] == 3
    assert all(call["max_body"] == 1 << 20 for call in outbound.calls)


def test_an_unchanged_alias_costs_one_call() -> None:
    client, outbound = registry({"registered-models/alias": version("3"), "runs/get": RUN})
    known = client.resolve("fraud", alias="challenger")
    outbound.calls.clear()
    assert client.resolve("fraud", alias="challenger", known=known) is known
    assert [urlsplit(c["url"]).path for c in outbound.calls] == ["/api/2.0/mlflow/registered-models/alias"]


def test_a_pinned_version_is_read_by_number_and_an_old_server_gives_the_source_as_uri() -> None:
    client, outbound = registry({"model-versions/get": version("4", run_id=""), "runs/get": RUN})
    found = client.resolve("fraud", version="4")
    assert (found.version, found.uri, found.card.run_id) == ("4", "models:/m-4", None)
    assert parse_qs(urlsplit(outbound.calls[0]["url"]).query) == {"name": ["fraud"], "version": ["4"]}


def test_the_card_is_capped() -> None:
    many = [{"key": f"m{i:03}", "value": "x" * 1000} for i in range(100)]
    run = {"run": {"data": {"metrics": many, "params": many}}}
    client, _ = registry(
        {"registered-models/alias": version("3", description="d" * 10_000, tags=many), "runs/get": run}
    )
    card = client.resolve("fraud", alias="a").card
    assert len(card.metrics) == len(card.params) == len(card.tags) == MAX_ENTRIES
    assert all(len(v) <= 256 for v in card.params.values()) and len(card.description or "") <= 2048


@pytest.mark.parametrize(
    ("answer", "status", "reason", "text"),
    [
        (
            {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "alias x not found"},
            404,
            "NotFound",
            "alias x",
        ),
        ({"error_code": "INTERNAL_ERROR"}, 500, "ServerError", "HTTP 500 INTERNAL_ERROR"),
        ({"error_code": "PERMISSION_DENIED"}, 403, "Refused", "HTTP 403 PERMISSION_DENIED"),
        (version("3", status="PENDING_REGISTRATION"), 200, "VersionNotReady", "is PENDING_REGISTRATION"),
        ({"nothing": 1}, 200, "BadAnswer", "no model version"),
    ],
)
def test_a_bad_answer_is_a_short_reason(answer: Any, status: int, reason: str, text: str) -> None:
    client, _ = registry({"registered-models/alias": answer}, status=status)
    with pytest.raises(RegistryError) as error:
        client.resolve("fraud", alias="x")
    assert error.value.reason == reason and text in str(error.value)


def test_an_unreachable_registry_is_the_outbound_error_class_never_the_address() -> None:
    def refuse(*_: Any) -> Answer:
        raise OutboundError("refused by egress policy", "mlflow.test:5000 -> 127.0.0.1: a loopback address")

    client = MlflowRegistry("http://mlflow.test:5000", FakeOutbound(respond=refuse))
    with pytest.raises(RegistryError) as error:
        client.resolve("fraud", alias="x")
    assert (error.value.reason, str(error.value)) == (
        "Unreachable",
        "cannot reach the registry: refused by egress policy",
    )


def test_write_back_tags_each_version_then_moves_the_alias_to_the_last_promoted() -> None:
    client, outbound = registry({"model-versions/set-tag": {}, "registered-models/alias": {}})
    client.write_back(
        "fraud",
        [
            Report("2", {"modeldeploy.outcome": "Promoted"}, promoted=True),
            Report("3", {"modeldeploy.outcome": "RolledBack", "modeldeploy.reason": "MetricFailed"}, False),
        ],
        "production",
    )
    sent = [(urlsplit(c["url"]).path.rsplit("/", 2)[-2:], json.loads(c["body"])) for c in outbound.calls]
    assert sent == [
        (
            ["model-versions", "set-tag"],
            {"name": "fraud", "version": "2", "key": "modeldeploy.outcome", "value": "Promoted"},
        ),
        (
            ["model-versions", "set-tag"],
            {"name": "fraud", "version": "3", "key": "modeldeploy.outcome", "value": "RolledBack"},
        ),
        (
            ["model-versions", "set-tag"],
            {"name": "fraud", "version": "3", "key": "modeldeploy.reason", "value": "MetricFailed"},
        ),
        (["registered-models", "alias"], {"name": "fraud", "alias": "production", "version": "2"}),
    ]
    assert all(
        c["method"] == "POST" and c["headers"]["Content-Type"] == "application/json" for c in outbound.calls
    )


def test_a_write_is_retried_on_a_server_error_and_then_reported() -> None:
    answers = iter([Answer(503, {}, b"{}"), Answer(200, {}, b"{}")])
    slept: list[float] = []
    client = MlflowRegistry("http://m", FakeOutbound(respond=lambda *a: next(answers)), sleep=slept.append)
    client.write_back("fraud", [Report("2", {"k": "v"}, promoted=False)], None)
    assert slept == [0.5]

    always = MlflowRegistry(
        "http://m", FakeOutbound(respond=lambda *a: Answer(503, {}, b"{}")), sleep=slept.append
    )
    with pytest.raises(RegistryError, match="HTTP 503"):
        always.write_back("fraud", [Report("2", {"k": "v"}, promoted=False)], None)


def test_a_deleted_version_is_skipped_not_retried_forever() -> None:
    client, outbound = registry({"registered-models/alias": {}})  # set-tag answers 404
    client.write_back("fraud", [Report("9", {"k": "v"}, promoted=False)], "production")
    assert len(outbound.calls) == 1


# --- the schedule: what the reconciler asks of the registry, and when ---------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def measurer_with(routes: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, FakeOutbound, Clock]:
    from modeldeploy.providers import OperatorConfig
    from modeldeploy.reconcile import measure

    clock = Clock()
    monkeypatch.setattr(measure.time, "monotonic", clock)
    _, outbound = registry(routes)
    config = OperatorConfig.model_validate(
        {
            "clusterName": "c1",
            "registryProviders": [
                {"name": "mlflow", "address": "http://mlflow.test:5000", "pollInterval": "30s"}
            ],
        }
    )
    return measure.Measurer(None, config, outbound, ""), outbound, clock  # type: ignore[arg-type]


def subject(ref: dict[str, Any], status: dict[str, Any] | None = None) -> Any:
    from planner_world import spec

    from modeldeploy.plan.inputs import Subject

    body = spec()
    body["model"] = {"name": "fraud-detector", "registry": {"provider": "mlflow", "model": "fraud", **ref}}
    return Subject.from_body(
        {"metadata": {"name": "fraud", "namespace": "risk"}, "spec": body, "status": status or {}}
    )


NOW = __import__("datetime").datetime(2026, 11, 22, tzinfo=__import__("datetime").UTC)


def test_an_alias_is_read_once_per_poll_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    measurer, outbound, clock = measurer_with(
        {"registered-models/alias": version("3"), "runs/get": RUN}, monkeypatch
    )
    md = subject({"alias": "challenger"})
    first = measurer.inputs(md, NOW).registry
    assert first.version == "3"
    known = {
        "registry": {
            "provider": "mlflow",
            "model": "fraud",
            "alias": "challenger",
            "version": "3",
            "card": {},
        }
    }
    md = subject({"alias": "challenger"}, known)
    outbound.calls.clear()
    clock.now += 29
    assert measurer.inputs(md, NOW).registry is None and outbound.calls == []
    assert measurer.registry_wake(md) == pytest.approx(1)
    clock.now += 1
    assert measurer.inputs(md, NOW).registry.version == "3"
    assert len(outbound.calls) == 1  # the version is known: no run, no URI read


def test_a_known_pinned_version_is_not_polled(monkeypatch: pytest.MonkeyPatch) -> None:
    measurer, outbound, clock = measurer_with(
        {"model-versions/get": version("4"), "runs/get": RUN}, monkeypatch
    )
    known = {"registry": {"provider": "mlflow", "model": "fraud", "version": "4", "card": {}}}
    md = subject({"version": "4"}, known)
    assert measurer.inputs(md, NOW).registry.version == "4"  # once per operator start
    outbound.calls.clear()
    clock.now += 3600
    assert measurer.inputs(md, NOW).registry is None and outbound.calls == []
    assert measurer.registry_wake(md) is None


def test_new_history_is_written_back_at_once_with_the_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    routes = {
        "registered-models/alias": version("3"),
        "runs/get": RUN,
        "model-versions/set-tag": {},
    }
    measurer, outbound, _clock = measurer_with(routes, monkeypatch)
    status = {
        "registry": {
            "provider": "mlflow",
            "model": "fraud",
            "alias": "challenger",
            "version": "3",
            "card": {},
        },
        "history": [
            {
                "revision": "fraud-3-abcde",
                "version": "3",
                "outcome": "Promoted",
                "at": "2026-11-22T10:00:00Z",
                "reason": "AnalysisPassed",
            }
        ],
    }
    md = subject({"alias": "challenger"}, status)
    measurer.inputs(md, NOW)  # the first round reads (operator start) and writes
    outbound.calls.clear()
    result = measurer.inputs(md, NOW).registry  # still unreported in this status: written again, not read
    assert result.reported_until.isoformat() == "2026-11-22T10:00:00+00:00" and result.version is None
    tags = {
        json.loads(c["body"])["key"]: json.loads(c["body"])["value"]
        for c in outbound.calls
        if "set-tag" in c["url"]
    }
    assert tags == {
        "modeldeploy.outcome": "Promoted",
        "modeldeploy.reason": "AnalysisPassed",
        "modeldeploy.cluster": "c1",
        "modeldeploy.namespace": "risk",
        "modeldeploy.name": "fraud",
        "modeldeploy.revision": "fraud-3-abcde",
        "modeldeploy.at": "2026-11-22T10:00:00+00:00",
    }
    assert list(tags)[-1] == "modeldeploy.outcome"  # last: whoever sees it sees the whole record
    alias = [json.loads(c["body"]) for c in outbound.calls if c["url"].endswith("registered-models/alias")]
    assert alias == [{"name": "fraud", "alias": "production", "version": "3"}]
