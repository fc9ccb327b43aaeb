"""Wire conventions every API model shares: camelCase, frozen, strict spec, lenient status.

Why these choices:

- **camelCase on the wire, snake_case in Python.** Field names are generated
  (``readiness_path`` <-> ``readinessPath``); the few names a generator gets
  wrong (``gatewayAPI``) carry an explicit alias. Python code may build models
  by field name; manifests are parsed by alias only (see
  :mod:`modeldeploy.api.manifest`), exactly as the API server reads them.
- **Frozen.** Specs and statuses are values: the planner derives a new status
  with ``model_copy(update=...)`` and never mutates one in place.
- **Spec models are strict and closed.** ``extra="forbid"`` makes a typo an
  error (as ``kubectl apply``'s strict field validation does), and strict
  scalars refuse ``"5"`` for an integer as the API server does, so ``lint``
  and admission agree. Enums are the exception: they are read from strings.
  Each spec model also runs the Python twins of its CEL rules.
- **Status models ignore unknown fields.** The status is written by the
  operator; an older operator reading a newer status must not crash.
- **Defaults live here, never in the CRD.** The API server stores a manifest
  exactly as Git holds it, so Argo CD sees no drift; the operator reads the
  defaults from these models.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from modeldeploy.api.rules import VALIDATIONS_KEY, object_rules, transition_rules

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""An RFC 1123 label: what Kubernetes accepts for most object names and keys."""

DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
"""A lowercase name of at most 63 characters (``error-rate``, ``fraud-warmup``)."""

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""An RFC 1123 subdomain: dot-separated labels, the format of Secret, ConfigMap,
ServiceAccount and most other object names (``k8s.io/apimachinery`` IsDNS1123Subdomain)."""

DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
"""An object name such as ``prometheus-token`` or ``payloads.v2``: never ``/``, ``..`` or upper case.

Every spec field that names a Kubernetes object uses this type (or :data:`DnsLabel`
where Kubernetes requires a label, e.g. namespaces), so a reference cannot
escape into another namespace's API path or another resource."""


def _add_object_rules(schema: dict[str, Any], cls: type) -> None:
    """Put the CEL rules declared on a model (object and transition rules) into its JSON schema."""
    rules = [rule.schema_entry() for rule, _ in [*object_rules(cls), *transition_rules(cls)]]
    if rules:
        schema[VALIDATIONS_KEY] = rules


class ApiModel(BaseModel):
    """Base of every model in the API: camelCase aliases, immutable, checked by its CEL twins."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        json_schema_extra=_add_object_rules,
    )

    @model_validator(mode="after")
    def _check_cel_rules(self) -> Self:
        for rule, check in object_rules(type(self)):
            if not check(self):
                raise rule.error()
        return self

    def to_wire(self, *, exclude_unset: bool = False) -> dict[str, Any]:
        """The object as the API server stores it: camelCase keys, JSON types, no nulls.

        ``exclude_unset=True`` leaves out defaults the author did not write, which
        is what a manifest round trip (``lint --fix``, tests) wants.
        """
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=exclude_unset)


class SpecModel(ApiModel):
    """Base of the models under ``spec``: closed to unknown fields, strict about scalar types."""

    model_config = ConfigDict(extra="forbid", strict=True)


class StatusModel(ApiModel):
    """Base of the models under ``status``: written by the operator, read leniently."""

    model_config = ConfigDict(extra="ignore")
