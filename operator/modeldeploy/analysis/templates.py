"""Query templates: ``{{revision}}`` and friends filled in so that a value can never change the query.

Users write one query per metric and the operator runs it for the candidate and
for the stable revision, so queries are templates (the variables are listed in
:data:`modeldeploy.api.TEMPLATE_VARIABLES`). The values come from names and
versions that people choose, so they are data, never PromQL.

The rule: **a value is always a literal.** The template is scanned the way
Prometheus' lexer would scan it, so each ``{{variable}}`` is known to sit

- inside a string literal (``revision="{{revision}}"``, ``'...'`` or a
  backquoted one): the value is escaped for that literal (see
  :mod:`modeldeploy.analysis.promql`), and inside a regular-expression matcher
  (``=~``, ``!~``) it is also regex-quoted, so ``3.2.0`` matches only 3.2.0
  while the template's own ``|`` or ``.*`` keep their meaning;
- in a ``# comment``: the value may not hold a line break;
- bare, in the query itself (``rate(x[{{interval}}])``): only a PromQL duration
  such as ``1m`` is accepted there, because nothing can be escaped outside a
  string. Any other value there is refused.

So variable values are only free text inside quoted label matchers (or other
string literals). Regex quoting follows the matcher operator only: a value put
into the regex argument of a function such as ``label_replace`` is escaped as
a string, not as a pattern. Anything the scanner cannot place safely (an unknown or
missing variable, ``{{`` without ``}}``, a variable right after a backslash in a
string, a value a context cannot hold) raises :class:`TemplateError`: the
operator validates templates at admission, but rendering still fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from modeldeploy.analysis.promql import Quote, UnsafeValueError, escape_string, quote_regex
from modeldeploy.api import TEMPLATE_VARIABLES, Role

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
"""``{{name}}`` with optional spaces inside the braces; the same pattern admission checks."""

BARE_VALUE = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+")
"""What a value outside any string literal may be: a PromQL duration such as ``1m`` or ``1h30m``."""

_QUOTES: dict[str, Quote] = {'"': '"', "'": "'", "`": "`"}
_REGEX_OPERATORS = ("=~", "!~")


class TemplateError(ValueError):
    """A query template that cannot be rendered safely with the given values."""


@dataclass(frozen=True)
class _Slot:
    """Where one ``{{variable}}`` sits in a template, and in which lexical context."""

    start: int
    end: int
    name: str
    quote: Quote | None  # the string literal it is inside, if any
    regex: bool  # that literal is the pattern of a =~ or !~ matcher
    comment: bool  # it is inside a # comment


def template_variables(
    *,
    namespace: str,
    name: str,
    revision: str,
    version: str,
    role: Role | str,
    stable_revision: str,
    interval: str,
) -> dict[str, str]:
    """The variables of one rendering, keyed as templates spell them (``stableRevision``)."""
    return {
        "namespace": namespace,
        "name": name,
        "revision": revision,
        "version": version,
        "role": str(role),
        "stableRevision": stable_revision,
        "interval": interval,
    }


def render_query(template: str, variables: Mapping[str, str]) -> str:
    """``template`` with every ``{{variable}}`` replaced by its value, escaped for where it stands.

    Raises :class:`TemplateError` for an unknown or missing variable and for a
    value that cannot be placed where the template puts it.
    """
    parts: list[str] = []
    position = 0
    for slot in _slots(template):
        parts.append(template[position : slot.start])
        parts.append(_render_value(slot, _value(slot.name, variables)))
        position = slot.end
    parts.append(template[position:])
    return "".join(parts)


def _value(name: str, variables: Mapping[str, str]) -> str:
    if name not in TEMPLATE_VARIABLES:
        known = ", ".join("{{%s}}" % v for v in sorted(TEMPLATE_VARIABLES))  # noqa: UP031
        raise TemplateError(f"unknown template variable {{{{{name}}}}}: use one of {known}")
    value = variables.get(name)
    if value is None:
        raise TemplateError(f"no value for {{{{{name}}}}} in this rendering")
    return value


def _render_value(slot: _Slot, value: str) -> str:
    where = f"{{{{{slot.name}}}}}"
    try:
        if slot.quote is not None:
            return escape_string(quote_regex(value) if slot.regex else value, slot.quote)
    except UnsafeValueError as error:
        raise TemplateError(f"{where}: {error}") from None
    if slot.comment:
        if "\n" in value or "\r" in value:
            raise TemplateError(f"{where}: value {value!r} would end the # comment it is in")
        return value
    if BARE_VALUE.fullmatch(value) is None:
        raise TemplateError(
            f"{where} stands outside a quoted string, where only a duration such as 1m is safe, "
            f'and its value is {value!r}: put it in a label matcher, e.g. revision="{where}"'
        )
    return value


def _slots(template: str) -> list[_Slot]:
    """Scan ``template`` as PromQL's lexer would and list its placeholders with their contexts."""
    leftover = PLACEHOLDER.sub("", template)
    if "{{" in leftover or "}}" in leftover:
        raise TemplateError("unbalanced {{ or }}: write variables as {{revision}}")
    placeholders = {match.start(): match for match in PLACEHOLDER.finditer(template)}
    slots: list[_Slot] = []
    quote: Quote | None = None
    regex = False
    comment = False
    index = 0
    while index < len(template):
        match = placeholders.get(index)
        if match is not None:
            slots.append(_Slot(match.start(), match.end(), match.group(1), quote, regex, comment))
            index = match.end()
            continue
        char = template[index]
        if comment:
            comment = char not in "\r\n"
        elif quote is None:
            if char in _QUOTES:
                quote = _QUOTES[char]
                regex = template[:index].rstrip().endswith(_REGEX_OPERATORS)
            elif char == "#":
                comment = True
        elif char == "\\" and quote != "`":
            if index + 1 in placeholders:
                raise TemplateError(
                    f"a variable right after a backslash (offset {index}) would be escaped by it; "
                    "remove the backslash"
                )
            index += 2
            continue
        elif char == quote:
            quote = None
            regex = False
        index += 1
    return slots
