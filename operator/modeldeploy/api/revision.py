"""What is deployed: the model version (``spec.model``) and the server that runs it (``spec.runtime``).

Together these two sections define a *revision*: the operator hashes them to
name the Deployment (``fraud-3-2-0-7c9f2``), so changing either starts a
rollout, while changing strategy, analysis or thresholds does not.

The runtime is deliberately small and typed (image, port, readiness path, args,
env, resources) because those are what every model server needs and what
reviewers read in a diff. ``podTemplate`` is the escape hatch for the rest
(tolerations, volumes, sidecars): an open Kubernetes PodTemplateSpec that the
operator merges *under* the typed fields, which always win.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from modeldeploy.api.base import DnsLabel, SpecModel
from modeldeploy.api.durations import Duration, at_most
from modeldeploy.api.rules import cel_rule

PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"

OpenObject = Annotated[dict[str, Any], WithJsonSchema({"type": "object", PRESERVE_UNKNOWN: True})]
"""A Kubernetes object fragment passed through untouched (the API server keeps unknown fields)."""

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"  # mantissa
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"  # suffix or exponent
)
"""Kubernetes' resource.Quantity syntax (``500m``, ``2Gi``, ``1``)."""


def _integer_as_text(value: object) -> object:
    # `cpu: 2` arrives as an int; Kubernetes reads both spellings, so do we.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_integer_as_text),
    Field(max_length=64, pattern=QUANTITY_PATTERN),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "pattern": QUANTITY_PATTERN,
        }
    ),
]
"""A resource quantity such as ``500m``, ``2Gi`` or ``1``."""

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]*$"
REGISTERED_MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
REGISTRY_VERSION_PATTERN = r"^[1-9][0-9]{0,9}$"
ALIAS_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"


class ModelCard(SpecModel):
    """Documentation that travels with a model version; shown by ``kubectl describe``, never interpreted."""

    owner: str | None = Field(
        default=None, max_length=256, description="Team or person answerable for this model, e.g. an e-mail."
    )
    description: str | None = Field(
        default=None, max_length=4096, description="What the model predicts and for whom."
    )
    training_data: str | None = Field(
        default=None,
        max_length=2048,
        description="Where the training data set lives (URI or catalogue name).",
    )
    metrics: dict[str, Annotated[str, Field(max_length=256)]] | None = Field(
        default=None,
        max_length=64,
        description='Offline evaluation results as strings, e.g. {auc: "0.93"}.',
    )


class RegistryRef(SpecModel):
    """A registered model in a model registry the cluster admin offers (MLflow), by version or alias.

    With ``alias`` the operator follows the alias: when it moves to another
    version, that version is rolled out through ``spec.strategy`` without any
    edit of the spec. With ``version`` the version is pinned (the GitOps way)
    and the registry only fills in the URI and the model card.
    """

    provider: DnsLabel = Field(
        description="Name of a registry provider in the operator's configuration (registryProviders)."
    )
    model: str = Field(
        min_length=1,
        max_length=256,
        pattern=REGISTERED_MODEL_PATTERN,
        description="Name of the registered model, e.g. fraud-detector.",
    )
    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        pattern=REGISTRY_VERSION_PATTERN,
        description='A pinned registry version, e.g. "3" (quote it in YAML). Set version or alias.',
    )
    alias: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=ALIAS_PATTERN,
        description="An alias to follow, e.g. challenger or champion. Set version or alias.",
    )

    @cel_rule("has(self.version) != has(self.alias)", "{path}: set exactly one of version and alias")
    def _one_selector(self) -> bool:
        return (self.version is None) != (self.alias is None)


class ModelSpec(SpecModel):
    """The model version to serve. Changing it starts a rollout."""

    name: str = Field(min_length=1, max_length=253, description="Name of the model, e.g. fraud-detector.")
    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=VERSION_PATTERN,
        description=(
            'Version of the model, e.g. "3.2.0" (quote it in YAML). Names the revision and is '
            "passed to the server as MODEL_VERSION. Required unless registry is set; then the "
            "registry's version is used."
        ),
    )
    registry: RegistryRef | None = Field(
        default=None,
        description=(
            "Take the version, URI and model card from a model registry: a registered model by "
            "version or alias. Instead of version."
        ),
    )
    uri: str | None = Field(
        default=None,
        max_length=2048,
        description="Where the server loads the model from, e.g. s3://models/fraud/3.2.0 (env MODEL_URI).",
    )
    card: ModelCard | None = Field(
        default=None, description="Model card: owner, description, training data, metrics."
    )

    @cel_rule(
        "has(self.version) != has(self.registry)",
        "{path}: set version, or registry (with its version or alias), not both and not neither",
    )
    def _one_source(self) -> bool:
        return (self.version is None) != (self.registry is None)

    @property
    def served_version(self) -> str:
        """The version that names the revision: ``version`` (resolved from the registry when it has one)."""
        if self.version is None:
            raise ValueError("spec.model.version is not resolved yet")
        return self.version


class EnvVar(SpecModel):
    """An environment variable for the model server container."""

    name: str = Field(min_length=1, max_length=256, description="Variable name.")
    value: str | None = Field(default=None, max_length=32768, description="Literal value.")
    value_from: OpenObject | None = Field(
        default=None,
        description="A Kubernetes EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef).",
    )

    @cel_rule(
        "!has(self.value) || !has(self.valueFrom)",
        "{path}: set value or valueFrom, not both",
    )
    def _one_source(self) -> bool:
        return self.value is None or self.value_from is None


class ResourceRequirements(SpecModel):
    """Compute resources for the model server container, as in a Pod spec."""

    requests: dict[str, Quantity] | None = Field(
        default=None, max_length=16, description="Minimum resources, e.g. {cpu: 500m, memory: 2Gi}."
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, max_length=16, description="Maximum resources, e.g. {memory: 4Gi, nvidia.com/gpu: 1}."
    )


class RuntimeSpec(SpecModel):
    """The model server: its container and how to tell that it is ready. Changing it starts a rollout."""

    image: str = Field(min_length=1, max_length=512, description="Container image of the model server.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port the server listens on. Default 8080.")
    readiness_path: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^/",
        description=(
            "HTTP path that answers 200 once the model is loaded: with the V2 protocol (MLServer, "
            "Triton) /v2/models/<name>/ready, not /v2/health/ready, which answers before any model is. "
            "When absent the readiness probe only opens a TCP connection to the port."
        ),
    )
    drain_delay: Annotated[Duration, at_most("5m")] | None = Field(
        default=None,
        description=(
            "How long a pod that is leaving (scale-down, a retired revision) keeps serving before its "
            "server gets SIGTERM: a preStop sleep, with terminationGracePeriodSeconds this plus 30s "
            "(or podTemplate's, at least this), so kube-proxy and the gateway stop sending it requests "
            "first. Default 10s; 0s turns it off; at most 5m."
        ),
    )
    args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=64, description="Arguments for the server container."
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=128,
        description="Environment variables, added after MODEL_NAME, MODEL_VERSION and MODEL_URI.",
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU, memory and accelerator requests and limits."
    )
    pod_template: OpenObject | None = Field(
        default=None,
        description=(
            "Escape hatch: a Kubernetes PodTemplateSpec (metadata, spec) merged under the fields above, "
            "for tolerations, volumes, sidecars and the like. The fields above win on conflict."
        ),
    )
