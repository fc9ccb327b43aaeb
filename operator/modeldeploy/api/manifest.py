"""A whole ModelDeployment object, and the entry points that turn raw dicts into models.

Raw objects arrive from three places: YAML files (``lint``, tests), the API
server (kopf hands the handlers a body) and Python code. The parse functions
here read them the way the API server does: by camelCase name only (a
snake_case key in a manifest is an unknown field, as it is for ``kubectl``),
and they report every problem as a :class:`~modeldeploy.api.problems.Problem`
worded like the admission error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modeldeploy.api.base import ApiModel
from modeldeploy.api.names import MAX_NAME_LENGTH
from modeldeploy.api.problems import InvalidManifestError, Location, problems_from_error
from modeldeploy.api.rules import cel_rule
from modeldeploy.api.spec import ModelDeploymentSpec
from modeldeploy.api.status import ModelDeploymentStatus

NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
"""An RFC 1035 label: what a Service name must be, and every child is named after the object."""


class ObjectMeta(ApiModel):
    """The parts of Kubernetes object metadata the operator reads; the rest is kept as is."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, description="Object name.")
    namespace: str | None = Field(default=None, description="Namespace.")
    uid: str | None = Field(default=None, description="Unique id given by the API server.")
    generation: int | None = Field(default=None, description="Incremented by the API server on spec changes.")
    resource_version: str | None = Field(default=None, description="Version for optimistic concurrency.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations.")


class ModelDeployment(ApiModel):
    """A model carried into production safely: warm-up, shadow, canary or blue-green, fallback."""

    model_config = ConfigDict(extra="forbid")

    api_version: Literal["modeldeploy.io/v1alpha1"] = Field(
        default="modeldeploy.io/v1alpha1", description="modeldeploy.io/v1alpha1"
    )
    kind: Literal["ModelDeployment"] = Field(default="ModelDeployment", description="ModelDeployment")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard object metadata.")
    spec: ModelDeploymentSpec = Field(description="Desired state.")
    status: ModelDeploymentStatus | None = Field(default=None, description="Observed state.")

    @cel_rule(
        f"!has(self.metadata.name) || (self.metadata.name.size() <= {MAX_NAME_LENGTH}"
        f" && self.metadata.name.matches('{NAME_PATTERN}'))",
        f"metadata.name must be at most {MAX_NAME_LENGTH} characters of a-z, 0-9 and '-', starting with a "
        "letter: it prefixes the names of the Services and Deployments the operator creates",
    )
    def _name_fits_children(self) -> bool:
        name = self.metadata.name
        return name is None or (len(name) <= MAX_NAME_LENGTH and re.fullmatch(NAME_PATTERN, name) is not None)


T = TypeVar("T", bound=BaseModel)


def parse_manifest(obj: Mapping[str, Any]) -> ModelDeployment:
    """Parse a whole ModelDeployment object; raises :class:`InvalidManifestError`."""
    return _parse(ModelDeployment, obj, ())


def parse_spec(spec: Mapping[str, Any]) -> ModelDeploymentSpec:
    """Parse ``spec`` alone (e.g. kopf's ``spec`` argument); problem paths start with ``spec.``."""
    return _parse(ModelDeploymentSpec, spec, ("spec",))


def parse_status(status: Mapping[str, Any] | None) -> ModelDeploymentStatus:
    """Parse ``status`` (absent on a new object); unknown fields are ignored."""
    return _parse(ModelDeploymentStatus, status or {}, ("status",))


def _parse(model: type[T], raw: Mapping[str, Any], prefix: Location) -> T:
    try:
        return model.model_validate(_plain(raw), by_alias=True, by_name=False)
    except ValidationError as error:
        raise InvalidManifestError(problems_from_error(error, prefix)) from None


_LEAVES = (str, int, float, type(None))
"""JSON's scalars (bool is an int): copied as they are, asked nothing else."""


def _plain(value: Any) -> Any:
    """Deep copy into plain dicts and lists: strict models refuse other mappings (kopf's views).

    Plain dicts and JSON scalars (nearly all of a body) are told apart first; only what is
    neither is asked whether it is a Mapping (an ABC check, several times slower).
    """
    if isinstance(value, dict):
        return {key: item if isinstance(item, _LEAVES) else _plain(item) for key, item in value.items()}
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, list | tuple):
        return [item if isinstance(item, _LEAVES) else _plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value
