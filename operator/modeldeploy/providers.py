"""The admin's side of tenancy: metric providers and egress rules, read once from the operator's config.

Why the operator's configuration and not a cluster-scoped resource: this is
where an SRE already sets the operator's Prometheus (``prometheusUrl`` in the
chart), the way Flagger takes ``-metrics-server`` and Grafana provisions data
sources from a file. It is reviewed and rolled out with the chart, lives in the
operator's namespace beside the Secrets it names, and needs no extra watch,
CRD or RBAC; tenants can neither read nor write it. The price is a rollout of
the operator when it changes (the chart restarts it on a checksum change).

A provider holds what a tenant must not choose: the address, TLS settings, a
bearer token Secret *in the operator's namespace*, headers (``X-Scope-OrgID:
"{{namespace}}"`` gives each namespace its own Mimir/Cortex tenant), and which
namespaces may use it. A ModelDeployment names one in ``spec.analysis.provider``
or gets the default. ``spec.analysis.prometheus`` (an inline address, its Secret
in the ModelDeployment's own namespace) works only with ``inlineProviders: true``.

The file (``--config``, YAML)::

    metricProviders:
    - name: mimir
      default: true
      address: https://mimir.monitoring:8080/prometheus
      namespaces: ["*"]                 # or a list of namespace names
      headers: {X-Scope-OrgID: "{{namespace}}"}
      bearerTokenSecretRef: {name: mimir-token, key: token}
      tls: {caFile: /etc/modeldeploy/ca/ca.crt, insecureSkipVerify: false}
      timeout: 10s
    inlineProviders: false
    egress:
      allow: [10.0.0.0/8, hooks.acme.io, "*.svc.cluster.local"]
    notificationTargets:                  # Apprise URLs; the chart puts them in a Secret
    - name: team-slack
      urlsFile: /etc/modeldeploy/notifications/team-slack   # one Apprise URL a line
      namespaces: [risk]
      ratePerMinute: 20
      burst: 10
    cloudEvents:
      sink: http://broker-ingress.knative-eventing.svc/default/default
      mode: structured                    # or binary
      namespaces: ["*"]
    clusterName: prod-eu-1                # written into the registry's tags
    registryProviders:                    # model registries (MLflow) for spec.model.registry
    - name: mlflow
      type: mlflow
      address: http://mlflow.ml-platform:5000
      namespaces: [risk]
      bearerTokenSecretRef: {name: mlflow-token, key: token}
      headers: {}
      tls: {caFile: /etc/modeldeploy/ca/ca.crt}
      timeout: 10s
      pollInterval: 30s                   # how often an alias is read
      promotionAlias: production          # set on a promoted version; "" sets none
      writeBack: true                     # tags on promotion, rollback, retirement

Registry providers are the admin's for the same reason as metric providers: the
address and the token are the operator's to use, and a tenant only names one
in ``spec.model.registry.provider``; a provider the namespace may not use is
refused with a condition, never called.

Notification targets are the admin's for the same reason: their URLs hold
tokens (a Slack webhook, SMTP credentials), so tenants only *name* one in
``spec.notifications``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from modeldeploy.api.base import DnsLabel, DnsSubdomain
from modeldeploy.api.durations import Duration, parse_duration

NAMESPACE_PLACEHOLDER = "{{namespace}}"
ALL_NAMESPACES = "*"
IMPLICIT_DEFAULT = "default"
"""The name of the provider made from ``--prometheus-url`` when the config defines none."""


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, validate_by_name=True)


class SecretKeyRef(_Config):
    name: DnsSubdomain
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class ProviderTls(_Config):
    ca_file: str | None = None
    insecure_skip_verify: bool = False


HeaderName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
HeaderValue = Annotated[str, Field(max_length=4096, pattern=r"^[\t\x20-\x7e]*$")]


NamespaceName = Annotated[str, Field(pattern=r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")]


class _HttpService(_Config):
    """What every admin-offered HTTP service has: where it is, which namespaces may use it, and how
    the operator authenticates to it."""

    name: DnsLabel
    address: Annotated[str, Field(max_length=2048, pattern=r"^https?://")]
    namespaces: tuple[NamespaceName, ...] = (ALL_NAMESPACES,)
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    bearer_token_secret_ref: SecretKeyRef | None = None
    tls: ProviderTls = Field(default_factory=ProviderTls)
    timeout: Duration = "10s"

    def serves(self, namespace: str) -> bool:
        return ALL_NAMESPACES in self.namespaces or namespace in self.namespaces

    def headers_for(self, namespace: str) -> dict[str, str]:
        """The headers with ``{{namespace}}`` filled in (a namespace is a DNS label: header-safe)."""
        return {name: value.replace(NAMESPACE_PLACEHOLDER, namespace) for name, value in self.headers.items()}

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)


class MetricProvider(_HttpService):
    """A Prometheus-compatible endpoint the admin offers to some namespaces."""

    default: bool = False


class Egress(_Config):
    allow: tuple[str, ...] | None = None
    """None: the built-in default (private addresses); see :mod:`modeldeploy.analysis.outbound`."""


class NotificationTarget(_Config):
    """Where notices go: Apprise URLs (Slack, Teams, mailto://, json://, ...) offered to some namespaces."""

    name: DnsLabel
    urls: tuple[Annotated[str, Field(min_length=1, max_length=4096)], ...] = ()
    """Inline URLs (for a config kept in a Secret); prefer ``urlsFile``."""
    urls_file: str | None = None
    """A file with one Apprise URL a line (a mounted Secret key); read at start."""
    namespaces: tuple[NamespaceName, ...] = (ALL_NAMESPACES,)
    rate_per_minute: Annotated[float, Field(gt=0, le=6000)] = 20
    burst: Annotated[int, Field(ge=1, le=1000)] = 10
    timeout: Duration = "10s"

    @model_validator(mode="after")
    def _has_urls(self) -> Self:
        if not self.urls and not self.urls_file:
            raise ValueError(f"notificationTargets[{self.name}]: set urls or urlsFile")
        return self

    def serves(self, namespace: str) -> bool:
        return ALL_NAMESPACES in self.namespaces or namespace in self.namespaces

    def read_urls(self) -> tuple[str, ...]:
        """The inline URLs plus those in ``urls_file`` (blank lines and # comments skipped)."""
        lines: list[str] = []
        if self.urls_file:
            lines = [line.strip() for line in Path(self.urls_file).read_text().splitlines()]
        return (*self.urls, *(line for line in lines if line and not line.startswith("#")))


class CloudEventsSink(_Config):
    """The admin's CloudEvents sink: every notice of the namespaces it serves, over HTTP."""

    sink: Annotated[str, Field(max_length=2048, pattern=r"^https?://")]
    mode: Literal["structured", "binary"] = "structured"
    namespaces: tuple[NamespaceName, ...] = (ALL_NAMESPACES,)
    rate_per_minute: Annotated[float, Field(gt=0, le=60000)] = 600
    burst: Annotated[int, Field(ge=1, le=10000)] = 100
    timeout: Duration = "10s"
    source: Annotated[str, Field(min_length=1, max_length=512)] = "/modeldeploy/operator"

    def serves(self, namespace: str) -> bool:
        return ALL_NAMESPACES in self.namespaces or namespace in self.namespaces


class RegistryProvider(_HttpService):
    """A model registry (MLflow's REST API) the admin offers to some namespaces."""

    type: Literal["mlflow"] = "mlflow"
    poll_interval: Duration = "30s"
    promotion_alias: Annotated[str, Field(max_length=63, pattern=r"^([A-Za-z_][A-Za-z0-9_-]*)?$")] = (
        "production"
    )
    write_back: bool = True

    @model_validator(mode="after")
    def _sane_interval(self) -> Self:
        if parse_duration(self.poll_interval) < 1:
            raise ValueError(f"registryProviders[{self.name}].pollInterval: at least 1s")
        return self

    @property
    def poll_seconds(self) -> float:
        return parse_duration(self.poll_interval)


class OperatorConfig(_Config):
    metric_providers: tuple[MetricProvider, ...] = ()
    registry_providers: tuple[RegistryProvider, ...] = ()
    cluster_name: Annotated[str, Field(max_length=253)] = ""
    inline_providers: bool = False
    egress: Egress = Field(default_factory=Egress)
    notification_targets: tuple[NotificationTarget, ...] = ()
    cloud_events: CloudEventsSink | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [p.name for p in self.metric_providers]
        if len(names) != len(set(names)):
            raise ValueError("metricProviders: names must be unique")
        if sum(p.default for p in self.metric_providers) > 1:
            raise ValueError("metricProviders: at most one provider may be the default")
        registries = [p.name for p in self.registry_providers]
        if len(registries) != len(set(registries)):
            raise ValueError("registryProviders: names must be unique")
        targets = [t.name for t in self.notification_targets]
        if len(targets) != len(set(targets)):
            raise ValueError("notificationTargets: names must be unique")
        if "cloudevents" in targets:
            raise ValueError("notificationTargets: the name cloudevents is reserved for the CloudEvents sink")
        return self

    def targets_for(self, namespace: str) -> frozenset[str]:
        """The notification targets a ModelDeployment in ``namespace`` may name."""
        return frozenset(t.name for t in self.notification_targets if t.serves(namespace))

    def with_prometheus_url(self, url: str | None) -> OperatorConfig:
        """``--prometheus-url`` as the default provider for every namespace, unless the file has a default."""
        if not url or any(p.default for p in self.metric_providers):
            return self
        if any(p.name == IMPLICIT_DEFAULT for p in self.metric_providers):
            raise ValueError(f"--prometheus-url makes a provider named {IMPLICIT_DEFAULT!r}: rename yours")
        implicit = MetricProvider(name=IMPLICIT_DEFAULT, address=url, default=True)
        return self.model_copy(update={"metric_providers": (*self.metric_providers, implicit)})

    def provider(self, name: str | None, namespace: str) -> MetricProvider | None:
        """The provider ``name`` (the default when None) if it serves ``namespace``, else None."""
        for provider in self.metric_providers:
            if (provider.name == name or (name is None and provider.default)) and provider.serves(namespace):
                return provider
        return None

    def registry(self, name: str, namespace: str) -> RegistryProvider | None:
        """The registry provider ``name`` if it exists and serves ``namespace``, else None."""
        for provider in self.registry_providers:
            if provider.name == name and provider.serves(namespace):
                return provider
        return None


class ConfigError(ValueError):
    """The config file cannot be used; the message names the file and the field."""


def load_config(path: str | None) -> OperatorConfig:
    """The config in ``path`` (YAML), or the defaults when no path is given."""
    if not path:
        return OperatorConfig()
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return OperatorConfig.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from error
