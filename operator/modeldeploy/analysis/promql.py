"""PromQL string literals: how to put an arbitrary text inside one so that it stays text.

A template variable's value (a revision name, a model version) ends up inside a
PromQL query. If it were pasted as is, a value such as
``x"} or vector(1) or {a="`` would close the label matcher and add a query of its
own, which always "passes". The only place a value can be put safely is inside a
string literal, escaped for the kind of literal it is in. PromQL has three
(the lexer in ``promql/parser/lex.go`` and ``util/strutil/quote.go``):

- ``"double"`` and ``'single'`` quoted: Go escapes. Inside them a backslash and
  the opening quote must be escaped, a raw newline ends the query with an error,
  and only the opening quote may be escaped (``\\'`` inside ``"..."`` is a syntax
  error), so the other quote character is left alone. We also escape every
  character that is not printable (control characters, line and paragraph
  separators, format characters) as ``\\uXXXX`` or ``\\UXXXXXXXX``: harmless to
  Prometheus and readable in logs.
- ```backquoted```: raw, no escapes at all. A value holding a backquote cannot be
  written into one, and Go's unquoting silently drops carriage returns, so a
  value with a backquote or any unprintable character is refused.

Inside a regular-expression matcher (``=~``, ``!~``) the literal is then read as
an RE2 pattern, so the value is first escaped as Go's ``regexp.QuoteMeta``
does: ``3.2.0`` must match the version 3.2.0, not 3x2y0.

Lone surrogates are not Unicode text and cannot be sent in a UTF-8 request;
they are refused too. Refusals raise :class:`UnsafeValueError`.
"""

from __future__ import annotations

from typing import Literal

Quote = Literal['"', "'", "`"]

_REGEX_SPECIALS = frozenset("\\.+*?()|[]{}^$")
"""The characters Go's regexp.QuoteMeta escapes."""

_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
"""Escapes people recognise; every other unprintable character is written as ``\\uXXXX``."""


class UnsafeValueError(ValueError):
    """A value that cannot be written into the requested PromQL literal without changing the query."""


def quote_regex(value: str) -> str:
    """``value`` as an RE2 pattern matching exactly that text (Go's ``regexp.QuoteMeta``)."""
    return "".join("\\" + char if char in _REGEX_SPECIALS else char for char in value)


def escape_string(value: str, quote: Quote) -> str:
    """The body of a PromQL string literal opened with ``quote`` that reads back as exactly ``value``.

    The result does not include the quotes themselves.
    """
    _refuse_surrogates(value)
    if quote == "`":
        return _raw(value)
    return "".join(_escape_char(char, quote) for char in value)


def _escape_char(char: str, quote: str) -> str:
    if char == quote:
        return "\\" + char
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _raw(value: str) -> str:
    for char in value:
        if char == "`" or not char.isprintable():
            raise UnsafeValueError(
                f"value {value!r} holds {char!r}, which a `backquoted` PromQL string cannot hold; "
                'quote the variable with "double quotes" instead'
            )
    return value


def _refuse_surrogates(value: str) -> None:
    for char in value:
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise UnsafeValueError(f"value {value!r} is not valid Unicode text (lone surrogate)")
