"""Validation problems, worded the way the API server words them at admission.

Why imitate the API server: the same manifest is judged in three places:
``kubectl apply`` (admission), ``modeldeploy lint`` and the operator (these
models). A person fixing a manifest should read the same sentence wherever
it was refused, and tests can then assert one expected message for all three.

So a pydantic error becomes a :class:`Problem` with the field path in the
server's notation (``spec.strategy.canary.steps[1].weight``) and a message in
the server's phrasing for the OpenAPI checks (``Required value``, ``in body
should be greater than or equal to 1``, ``Unsupported value``, ``unknown
field``), and exactly the CEL rule's message, after ``Invalid value:`` as
the server prints it, for the rules that have a CEL twin (see
:mod:`modeldeploy.api.rules`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from modeldeploy.api.rules import PATH_PLACEHOLDER, RULE_ERROR_TYPE

Location = Sequence[str | int]


@dataclass(frozen=True)
class Problem:
    """One reason a manifest is invalid: where (a field path) and what (a message)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidManifestError(ValueError):
    """A manifest that the models refuse, with every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


def field_path(loc: Location) -> str:
    """A location as the API server prints it: ``spec.strategy.canary.steps[1].weight``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def schema_path(loc: Location) -> str:
    """A location as ``kubectl explain`` names it, without list indices: ``spec.strategy.canary.steps``."""
    return ".".join(part for part in loc if isinstance(part, str))


def problems_from_error(error: ValidationError, prefix: Location = ()) -> list[Problem]:
    """Translate a pydantic error into problems; ``prefix`` is where the validated object sits."""
    return [_problem(detail, (*prefix, *detail["loc"])) for detail in error.errors(include_url=False)]


_TYPE_ERRORS = {
    "string_type": "string",
    "int_type": "integer",
    "int_parsing": "integer",
    "float_type": "number",
    "float_parsing": "number",
    "bool_type": "boolean",
    "bool_parsing": "boolean",
    "model_type": "object",
    "model_attributes_type": "object",
    "dict_type": "object",
    "list_type": "array",
}

_BOUNDS = {
    "greater_than_equal": ("ge", "should be greater than or equal to"),
    "less_than_equal": ("le", "should be less than or equal to"),
    "greater_than": ("gt", "should be greater than"),
    "less_than": ("lt", "should be less than"),
}


def _problem(detail: ErrorDetails, loc: Location) -> Problem:
    kind = detail["type"]
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    value = detail.get("input")
    path = field_path(loc)
    if kind == RULE_ERROR_TYPE:
        message = str(ctx["message"]).replace(PATH_PLACEHOLDER, schema_path(loc))
        if ctx.get("field_path"):
            return Problem((path + str(ctx["field_path"])).lstrip("."), f"Invalid value: {message}")
        if isinstance(value, str | int | float):
            return Problem(path, f"Invalid value: {_go(value)}: {message}")
        return Problem(path, f"Invalid value: {message}")
    if kind == "extra_forbidden":
        return Problem(field_path(loc[:-1]), f'unknown field "{path}"')
    if kind == "missing":
        return Problem(path, "Required value")
    if kind in ("enum", "literal_error"):
        supported = ", ".join(f'"{v}"' for v in re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return Problem(path, f"Unsupported value: {_go(value)}: supported values: {supported}")
    if kind in _TYPE_ERRORS:
        got = _json_type(value)
        return Problem(
            path, f'Invalid value: "{got}": {path} in body must be of type {_TYPE_ERRORS[kind]}: "{got}"'
        )
    if kind in _BOUNDS:
        key, phrase = _BOUNDS[kind]
        return Problem(path, f"Invalid value: {_go(value)}: {path} in body {phrase} {_number(ctx[key])}")
    if kind == "string_too_long":
        return Problem(path, f"Too long: may not be more than {ctx['max_length']} bytes")
    if kind == "string_too_short":
        return Problem(
            path,
            f"Invalid value: {_go(value)}: {path} in body should be at least {ctx['min_length']} chars long",
        )
    if kind == "string_pattern_mismatch":
        return Problem(path, f"Invalid value: {_go(value)}: {path} in body should match '{ctx['pattern']}'")
    if kind == "too_long" and isinstance(value, dict):
        return Problem(path, f"Too many: {len(value)}: must have at most {ctx['max_length']} items")
    if kind == "too_long":
        return Problem(path, f"Too many: {ctx['actual_length']}: must have at most {ctx['max_length']} items")
    if kind == "too_short":
        return Problem(
            path,
            f"Invalid value: {ctx['actual_length']}: {path} in body "
            f"should have at least {ctx['min_length']} items",
        )
    return Problem(path, detail["msg"])


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _go(value: object) -> str:
    """A value the way the API server quotes it in ``Invalid value: ...``."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return _number(value)
    return f'"{_json_type(value)}"'
