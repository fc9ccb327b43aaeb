"""CEL validation rules and their Python twins, declared once, next to the fields they guard.

Why twins: the API server checks a manifest at admission with the CEL rules in
the CRD (``x-kubernetes-validations``); the operator and ``modeldeploy lint``
check the same manifest with pydantic. If the two were written separately they
would drift, and a manifest could pass ``lint`` and fail ``kubectl apply`` (or
the reverse). So every rule is one object holding the CEL expression, the
message, and a Python predicate; the CRD generator reads the expression and
the message, the pydantic validator runs the predicate and reports the very
same message.

Messages may contain ``{path}``, which stands for the schema path of the node
carrying the rule in ``kubectl explain`` notation (``spec.strategy.canary.steps``,
no list indices). The CRD generator substitutes it when it walks the schema; the
Python side substitutes it from the pydantic error location. A message therefore
names the field even when the same type is used in several places.

Three shapes of rule exist:

- :class:`CelCheck` in ``Annotated[...]`` metadata: a rule on one field value
  (a string, a list), e.g. duration syntax or unique metric names.
- :func:`cel_rule` on a method of a spec model: a rule over the whole object,
  e.g. "canary and blueGreen are exclusive".
- :func:`cel_transition_rule` on a method taking the old object: a rule that the
  API server evaluates on updates only (``oldSelf``), e.g. the lock.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

PATH_PLACEHOLDER = "{path}"
VALIDATIONS_KEY = "x-kubernetes-validations"
RULE_ERROR_TYPE = "cel_rule"
"""The pydantic error type under which a failed twin is reported."""


@dataclass(frozen=True)
class CelRule:
    """One CEL rule as it appears in the CRD, message still holding ``{path}``."""

    rule: str
    message: str
    field_path: str | None = None
    """Where the API server reports the failure, relative to the node (``.strategy.shadow``)."""

    def schema_entry(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        return entry

    def error(self) -> PydanticCustomError:
        """The pydantic error a failed Python twin raises (see :mod:`modeldeploy.api.problems`)."""
        return PydanticCustomError(
            RULE_ERROR_TYPE, "{message}", {"message": self.message, "field_path": self.field_path or ""}
        )


@dataclass(frozen=True)
class CelCheck:
    """``Annotated`` metadata: a CEL rule on a field value with its Python predicate."""

    rule: str
    message: str
    check: Callable[[Any], bool]

    @property
    def cel(self) -> CelRule:
        return CelRule(self.rule, self.message)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: Any) -> Any:
            if not self.check(value):
                raise self.cel.error()
            return value

        return core_schema.no_info_after_validator_function(validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        target = handler.resolve_ref_schema(json_schema)
        target.setdefault(VALIDATIONS_KEY, []).append(self.cel.schema_entry())
        return json_schema


M = TypeVar("M")

ObjectCheck = Callable[[M], bool]
TransitionCheck = Callable[[M, M], bool]

_OBJECT_RULES: dict[Callable[..., bool], CelRule] = {}
_TRANSITION_RULES: dict[Callable[..., bool], CelRule] = {}


def cel_rule(
    rule: str, message: str, *, field_path: str | None = None
) -> Callable[[ObjectCheck[M]], ObjectCheck[M]]:
    """Mark a predicate method of a spec model as the Python twin of a CEL rule on that object.

    The method returns True when the object is valid. It runs after the fields
    have been validated, so it sees typed values; an absent optional field is None.
    """

    def mark(check: ObjectCheck[M]) -> ObjectCheck[M]:
        _OBJECT_RULES[check] = CelRule(rule, message, field_path)
        return check

    return mark


def cel_transition_rule(rule: str, message: str) -> Callable[[TransitionCheck[M]], TransitionCheck[M]]:
    """Mark a method ``(self, old) -> bool`` as the twin of a CEL transition rule (uses ``oldSelf``)."""

    def mark(check: TransitionCheck[M]) -> TransitionCheck[M]:
        _TRANSITION_RULES[check] = CelRule(rule, message)
        return check

    return mark


@cache
def object_rules(cls: type) -> list[tuple[CelRule, Callable[[Any], bool]]]:
    """The object rules declared on ``cls`` and its bases, in declaration order (bases first)."""
    return _collect(cls, _OBJECT_RULES)


@cache
def transition_rules(cls: type) -> list[tuple[CelRule, Callable[[Any, Any], bool]]]:
    """The transition rules declared on ``cls`` and its bases, in declaration order (bases first)."""
    return _collect(cls, _TRANSITION_RULES)


def _collect(cls: type, registry: dict[Callable[..., bool], CelRule]) -> list[tuple[CelRule, Any]]:
    found: dict[str, tuple[CelRule, Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if inspect.isfunction(value) and value in registry:
                found[name] = (registry[value], value)  # a subclass's rule of the same name replaces it
            elif name in found:
                del found[name]  # overridden by something that is not a rule
    return list(found.values())
