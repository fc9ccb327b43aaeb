"""How requests reach the model: which router splits traffic between stable and candidate.

Three routers exist because clusters differ: Gateway API (an HTTPRoute with
weights and a RequestMirror filter), Istio (a VirtualService with weights and
mirroring), and plain Kubernetes Services for clusters without either. The
service router can only approximate canary weights (by replica ratio) and
cannot mirror, so strategies that need mirroring are refused with it at
admission (see :mod:`modeldeploy.api.spec`).

Each router has its own settings block, and only the block for the chosen
router may be set: a stray ``istio:`` under ``router: gatewayAPI`` is a mistake
the author should hear about, not a silently ignored block.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from modeldeploy.api.base import DNS_SUBDOMAIN_PATTERN, DnsLabel, DnsSubdomain, SpecModel
from modeldeploy.api.durations import Duration, at_most
from modeldeploy.api.rules import cel_rule

_SUBDOMAIN = DNS_SUBDOMAIN_PATTERN.removeprefix("^").removesuffix("$")

Hostname = Annotated[str, Field(min_length=1, max_length=253, pattern=rf"^(\*\.)?{_SUBDOMAIN}$")]
"""Gateway API's Hostname: a lowercase DNS name, optionally with a ``*.`` wildcard prefix."""

IstioHost = Annotated[str, Field(min_length=1, max_length=253, pattern=rf"^(\*|(\*\.)?{_SUBDOMAIN})$")]
"""An Istio VirtualService host: a DNS name (optionally ``*.``-prefixed), or ``*``."""

IstioGateway = Annotated[
    str, Field(min_length=1, max_length=317, pattern=rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?{_SUBDOMAIN}$")
]
"""An Istio Gateway reference: ``name``, ``namespace/name`` or ``mesh``."""

GROUP_PATTERN = rf"^$|^{_SUBDOMAIN}$"
"""Gateway API's Group: empty (the core group) or a DNS subdomain."""

KIND_PATTERN = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"
"""Gateway API's Kind: a CamelCase identifier."""


class Router(StrEnum):
    """The component that splits traffic between revisions."""

    GATEWAY_API = "gatewayAPI"
    ISTIO = "istio"
    SERVICE = "service"


class ParentReference(SpecModel):
    """A Gateway (or other parent) the HTTPRoute attaches to, as in Gateway API's ParentReference."""

    name: DnsSubdomain = Field(description="Name of the parent, usually a Gateway.")
    namespace: DnsLabel | None = Field(
        default=None, description="Namespace of the parent; the ModelDeployment's namespace when absent."
    )
    group: str | None = Field(
        default=None,
        max_length=253,
        pattern=GROUP_PATTERN,
        description="API group of the parent; gateway.networking.k8s.io when absent.",
    )
    kind: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=KIND_PATTERN,
        description="Kind of the parent; Gateway when absent.",
    )
    section_name: DnsSubdomain | None = Field(default=None, description="A listener of the Gateway, by name.")
    port: int | None = Field(default=None, ge=1, le=65535, description="A listener of the Gateway, by port.")


class GatewayAPIRouting(SpecModel):
    """Settings of the gatewayAPI router: where the HTTPRoute attaches and which host names it serves."""

    parent_refs: list[ParentReference] = Field(
        min_length=1, max_length=16, description="Gateways the HTTPRoute attaches to."
    )
    hostnames: list[Hostname] = Field(
        default_factory=list,
        max_length=16,
        description="Host names the HTTPRoute matches, e.g. fraud.acme.io; all the Gateway's when empty.",
    )
    acceptance_wait: Annotated[Duration, at_most("10m")] = Field(
        default="30s",
        description=(
            "How long traffic waits for a first status from a gateway on a new HTTPRoute. A route no "
            "gateway has written status for after this moves traffic unconfirmed (condition RouteAccepted "
            "Unknown). Once a gateway writes status, traffic moves only while every parent has Accepted "
            "and ResolvedRefs True for the route's current generation. At most 10m. Default 30s."
        ),
    )


class IstioRouting(SpecModel):
    """Settings of the istio router: which gateways and hosts the VirtualService binds."""

    gateways: list[IstioGateway] = Field(
        default_factory=list,
        max_length=16,
        description="Istio Gateways (namespace/name) to bind; in-mesh traffic only when empty.",
    )
    hosts: list[IstioHost] = Field(
        default_factory=list,
        max_length=16,
        description="Hosts the VirtualService matches; the stable Service's name when empty.",
    )


class TrafficSpec(SpecModel):
    """Traffic routing. Without this block the service router is used."""

    router: Annotated[Router, Field(strict=False)] = Field(
        description=(
            "gatewayAPI (HTTPRoute: exact weights, mirroring), istio (VirtualService: exact weights, "
            "mirroring) or service (plain Services: approximate weights by replica ratio, no mirroring)."
        ),
    )
    gateway_api: GatewayAPIRouting | None = Field(
        default=None, alias="gatewayAPI", description="Settings of the gatewayAPI router; required with it."
    )
    istio: IstioRouting | None = Field(default=None, description="Settings of the istio router.")

    @cel_rule(
        "self.router != 'gatewayAPI' || has(self.gatewayAPI)",
        "{path}.gatewayAPI is required when router is gatewayAPI: list the Gateway in gatewayAPI.parentRefs",
    )
    def _gateway_api_settings_present(self) -> bool:
        return self.router != Router.GATEWAY_API or self.gateway_api is not None

    @cel_rule(
        "!has(self.gatewayAPI) || self.router == 'gatewayAPI'",
        "{path}.gatewayAPI is only read by the gatewayAPI router: remove it or set router: gatewayAPI",
    )
    def _gateway_api_settings_used(self) -> bool:
        return self.gateway_api is None or self.router == Router.GATEWAY_API

    @cel_rule(
        "!has(self.istio) || self.router == 'istio'",
        "{path}.istio is only read by the istio router: remove it or set router: istio",
    )
    def _istio_settings_used(self) -> bool:
        return self.istio is None or self.router == Router.ISTIO
