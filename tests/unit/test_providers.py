"""The admin's metric providers: who may use which, where their credentials live, when inline is allowed."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from modeldeploy.analysis.outbound import Outbound
from modeldeploy.analysis.prometheus import PrometheusClient
from modeldeploy.api import parse_spec
from modeldeploy.kube.client import Kind, KubeClient
from modeldeploy.plan.inputs import Subject
from modeldeploy.providers import ConfigError, OperatorConfig, load_config
from modeldeploy.reconcile.measure import Measurer, NoPrometheus

CONFIG = """
metricProviders:
- name: mimir
  default: true
  address: https://mimir.monitoring:8080/prometheus
  headers: {X-Scope-OrgID: "{{namespace}}"}
  bearerTokenSecretRef: {name: mimir-token, key: token}
- name: finance-only
  address: http://prom.finance:9090
  namespaces: [finance]
"""


@pytest.fixture
def config(tmp_path: Path) -> OperatorConfig:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return load_config(str(path))


def test_a_namespace_gets_the_default_or_a_provider_open_to_it(config: OperatorConfig) -> None:
    assert config.provider(None, "team-a").name == "mimir"  # type: ignore[union-attr]
    assert config.provider("finance-only", "finance").name == "finance-only"  # type: ignore[union-attr]
    assert config.provider("finance-only", "team-a") is None
    assert config.provider("nope", "team-a") is None


def test_headers_are_set_per_namespace(config: OperatorConfig) -> None:
    assert config.metric_providers[0].headers_for("team-a") == {"X-Scope-OrgID": "team-a"}


def test_prometheus_url_is_the_default_provider_when_the_config_has_none() -> None:
    config = OperatorConfig().with_prometheus_url("http://prom:9090")
    assert config.provider(None, "anything").address == "http://prom:9090"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("metricProviders: [{name: a, address: ftp://x}]", "address"),
        ("metricProviders: [{name: A/b, address: http://x}]", "name"),
        (
            "metricProviders: [{name: a, address: http://x, bearerTokenSecretRef: {name: ../x, key: t}}]",
            "name",
        ),
        ('metricProviders: [{name: a, address: http://x, headers: {X-A: "a\\nb"}}]', "headers"),
        ("inlineProvider: true", "inlineProvider"),
        (
            "metricProviders: [{name: a, address: http://x, default: true},"
            " {name: b, address: http://y, default: true}]",
            "at most one",
        ),
    ],
)
def test_a_bad_config_is_refused_naming_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=field):
        load_config(str(path))


class SecretsOnly(KubeClient):
    """Answers Secret reads from a dict keyed by (namespace, name) and records them."""

    def __init__(self, secrets: dict[tuple[str, str], str]) -> None:
        self.secrets = secrets
        self.reads: list[tuple[str | None, str]] = []

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.reads.append((namespace, name))
        value = self.secrets.get((namespace or "", name))
        return None if value is None else {"data": {"token": base64.b64encode(value.encode()).decode()}}


def subject(analysis: dict[str, Any]) -> tuple[Subject, Any]:
    spec = {
        "model": {"name": "m", "version": "1"},
        "runtime": {"image": "i"},
        "analysis": {**analysis, "metrics": [{"name": "e", "query": "up", "max": 1}]},
    }
    return Subject(namespace="team-a", name="m", uid="u", generation=1, spec=spec, status={}), parse_spec(
        spec
    )


def measurer(config: OperatorConfig, client: SecretsOnly) -> Measurer:
    return Measurer(client, config, Outbound(), "http://{service}", operator_namespace="modeldeploy-system")


def test_a_provider_token_is_read_from_the_operator_namespace(config: OperatorConfig) -> None:
    client = SecretsOnly({("modeldeploy-system", "mimir-token"): "s3cret"})
    found, spec = subject({})
    prometheus = measurer(config, client)._prometheus(found, spec)
    assert isinstance(prometheus, PrometheusClient)
    assert client.reads == [("modeldeploy-system", "mimir-token")]
    assert prometheus.headers["Authorization"] == "Bearer s3cret"
    assert prometheus.headers["X-Scope-OrgID"] == "team-a"


def test_an_inline_address_is_refused_unless_the_admin_allows_it(config: OperatorConfig) -> None:
    client = SecretsOnly({("team-a", "prom"): "t"})
    inline = {
        "prometheus": {
            "address": "http://evil:9090",
            "bearerTokenSecretRef": {"name": "prom", "key": "token"},
        }
    }
    found, spec = subject(inline)
    refused = measurer(config, client)._prometheus(found, spec)
    assert isinstance(refused, NoPrometheus) and "admin allows no inline address" in refused.reason
    assert client.reads == []
    allowed = measurer(config.model_copy(update={"inline_providers": True}), client)._prometheus(found, spec)
    assert isinstance(allowed, PrometheusClient) and allowed.address == "http://evil:9090"
    assert client.reads == [("team-a", "prom")]


def test_a_provider_closed_to_the_namespace_is_refused_by_name(config: OperatorConfig) -> None:
    found, spec = subject({"provider": "finance-only"})
    refused = measurer(config, SecretsOnly({}))._prometheus(found, spec)
    assert isinstance(refused, NoPrometheus)
    assert refused.reason.startswith("metric provider 'finance-only' is not offered to namespace team-a")


class Recording(SecretsOnly):
    def __init__(self) -> None:
        super().__init__({})
        self.patches: list[dict[str, Any]] = []

    def merge_patch(  # type: ignore[override]
        self, kind: Kind, namespace: str | None, name: str, patch: dict[str, Any], subresource: str = ""
    ) -> dict[str, Any]:
        self.patches.append(patch)
        return {}


def retraining(message: str, url: str, starts: int = 0) -> tuple[Subject, Any, Any]:
    from modeldeploy.api import parse_status

    spec = {
        "model": {"name": "m", "version": "1"},
        "runtime": {"image": "i"},
        "monitoring": {
            "metrics": [{"name": "drift", "query": "up", "max": 1}],
            "retrain": {"webhook": {"url": url, "timeout": "2s", "retries": 0}},
        },
    }
    status = {
        "retrain": {
            "count": 1,
            "webhook": url,
            "outcome": "Pending",
            "at": "2026-01-01T00:00:00Z",
            "metric": "drift",
            "message": message,
            "webhookStarts": starts,
        }
    }
    subject = Subject(namespace="team-a", name="m", uid="u", generation=1, spec=spec, status=status)
    return subject, parse_spec(spec), parse_status(status)


def test_a_webhook_call_is_recorded_before_it_is_made_and_counted() -> None:
    client = Recording()
    found, spec, status = retraining("drift 0.3 > 0.2", "http://127.0.0.1:9/hook")
    outcome = Measurer(client, OperatorConfig(), Outbound(), "x")._webhook(found, spec, status)
    assert client.patches == [{"status": {"retrain": {"webhookStarts": 1}}}]
    assert outcome is not None and outcome.message.endswith("refused by egress policy")


def test_a_webhook_whose_calls_never_finished_is_given_up_not_called_again() -> None:
    client = Recording()
    found, spec, status = retraining("drift 0.3 > 0.2", "http://127.0.0.1:9/hook", starts=3)
    outcome = Measurer(client, OperatorConfig(), Outbound(), "x")._webhook(found, spec, status)
    assert client.patches == []
    assert outcome is not None and not outcome.ok and "3 calls started and none finished" in outcome.message
