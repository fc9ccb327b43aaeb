"""Query templates: variables are filled in as literals, and no value can change the query."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from modeldeploy.analysis.promql import UnsafeValueError, escape_string, quote_regex
from modeldeploy.analysis.templates import TemplateError, render_query, template_variables
from modeldeploy.api import TEMPLATE_VARIABLES

INJECTION = 'x"} or vector(1) or {a="'

# Text as Python holds it, minus lone surrogates (which are not Unicode text and never reach a query).
TEXT = st.text(st.characters(exclude_categories=["Cs"]))

_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def unquote(literal: str) -> str:
    """A PromQL string literal's value, read as Prometheus' lexer and strutil.Unquote read it.

    Raises ValueError where Prometheus would see the literal end early or a syntax error,
    which is exactly what an injection needs.
    """
    quote, body = literal[0], literal[1:-1]
    assert literal[-1] == quote
    if quote == "`":
        if "`" in body:
            raise ValueError("backquote inside a raw string")
        return body
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == quote:
            raise ValueError(f"unescaped {quote} at {index}: the literal would end here")
        if char == "\n":
            raise ValueError("raw newline in a quoted string")
        if char != "\\":
            out.append(char)
            index += 1
            continue
        escape = body[index + 1]
        if escape in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[escape])
            index += 2
        elif escape == quote:
            out.append(quote)
            index += 2
        elif escape in "uU":
            width = 4 if escape == "u" else 8
            digits = body[index + 2 : index + 2 + width]
            assert re.fullmatch(f"[0-9a-fA-F]{{{width}}}", digits), digits
            code = int(digits, 16)
            assert code <= 0x10FFFF and not 0xD800 <= code < 0xE000
            out.append(chr(code))
            index += 2 + width
        else:
            raise ValueError(f"escape \\{escape} is a syntax error in a {quote}-quoted PromQL string")
    return "".join(out)


def literal_in(rendered: str, prefix: str, suffix: str) -> str:
    assert rendered.startswith(prefix) and rendered.endswith(suffix)
    return rendered[len(prefix) : len(rendered) - len(suffix)]


def test_variables_are_substituted_in_label_matchers() -> None:
    query = 'sum(rate(requests_total{namespace="{{namespace}}",revision="{{revision}}"}[{{interval}}]))'
    rendered = render_query(query, {"namespace": "risk", "revision": "fraud-3-2-0-7c9f2", "interval": "1m"})
    assert rendered == 'sum(rate(requests_total{namespace="risk",revision="fraud-3-2-0-7c9f2"}[1m]))'


def test_spaces_inside_the_braces_are_allowed() -> None:
    assert render_query(
        'x{r="{{ revision }}",s="{{stableRevision  }}"}', {"revision": "a", "stableRevision": "b"}
    ) == ('x{r="a",s="b"}')


def test_an_injected_matcher_stays_one_label_value() -> None:
    rendered = render_query('foo{revision="{{revision}}"}', {"revision": INJECTION})
    assert rendered == r'foo{revision="x\"} or vector(1) or {a=\""}'
    assert unquote(literal_in(rendered, "foo{revision=", "}")) == INJECTION


def test_a_value_is_rendered_once_and_never_read_as_a_template() -> None:
    assert render_query('x{r="{{revision}}"}', {"revision": "{{namespace}}"}) == 'x{r="{{namespace}}"}'


@given(TEXT)
@example(INJECTION)
@example("back\\slash\\")
@example("new\nline\r\u2028\x00\x7f")
@example("'single' and `back`")
@example("\U0001f600 emoji and e\u0301")
def test_any_value_in_a_double_quoted_matcher_reads_back_as_exactly_that_value(value: str) -> None:
    rendered = render_query('foo{l="{{revision}}"}', {"revision": value})
    assert unquote(literal_in(rendered, "foo{l=", "}")) == value
    assert "\n" not in rendered


@given(TEXT)
@example("it's")
@example('say "hi"')
def test_any_value_in_a_single_quoted_matcher_reads_back_as_exactly_that_value(value: str) -> None:
    rendered = render_query("foo{l='{{revision}}'}", {"revision": value})
    assert unquote(literal_in(rendered, "foo{l=", "}")) == value


@given(TEXT)
@example("3.2.0")
@example(".*")
@example("a|b")
@example("(x)[y]{2}^$+?\\")
def test_a_value_in_a_regex_matcher_matches_exactly_itself(value: str) -> None:
    rendered = render_query('foo{version=~"{{version}}"}', {"version": value})
    pattern = unquote(literal_in(rendered, "foo{version=~", "}"))
    assert re.fullmatch(pattern, value, flags=re.DOTALL)
    assert not re.fullmatch(pattern, value + "x", flags=re.DOTALL)


def test_the_templates_own_regex_keeps_its_meaning() -> None:
    rendered = render_query(
        'x{revision !~ "{{revision}}|{{stableRevision}}"}', {"revision": "a.b", "stableRevision": "c"}
    )
    assert rendered == r'x{revision !~ "a\\.b|c"}'


def test_an_equality_matcher_is_not_regex_quoted() -> None:
    assert render_query('x{v="{{version}}"}', {"version": "3.2.0"}) == 'x{v="3.2.0"}'


@given(TEXT.filter(lambda v: "`" not in v and v.isprintable()))
def test_printable_values_go_into_a_raw_string_unchanged(value: str) -> None:
    assert render_query("x{l=`{{revision}}`}", {"revision": value}) == f"x{{l=`{value}`}}"


@pytest.mark.parametrize("value", ["a`b", "line\nbreak", "carriage\rreturn"])
def test_a_raw_string_refuses_a_value_it_cannot_hold(value: str) -> None:
    with pytest.raises(TemplateError, match="backquoted"):
        render_query("x{l=`{{revision}}`}", {"revision": value})


@pytest.mark.parametrize("interval", ["1m", "30s", "1h30m", "5000ms", "1d"])
def test_a_duration_may_stand_outside_a_string(interval: str) -> None:
    assert render_query("rate(x[{{interval}}])", {"interval": interval}) == f"rate(x[{interval}])"


@pytest.mark.parametrize("value", ["fraud", "1m] or vector(1", "", "1 m", "-1m", INJECTION])
def test_any_other_value_outside_a_string_is_refused(value: str) -> None:
    with pytest.raises(TemplateError, match="outside a quoted string"):
        render_query("rate(x[{{interval}}])", {"interval": value})


def test_a_value_in_a_comment_may_not_end_the_comment() -> None:
    assert render_query("x # for {{revision}}\n", {"revision": 'a"b'}) == 'x # for a"b\n'
    with pytest.raises(TemplateError, match="comment"):
        render_query("x # for {{revision}}\n", {"revision": "a\nor vector(1)"})


def test_a_quote_inside_a_comment_opens_no_string() -> None:
    rendered = render_query('x # it\'s\n + y{r="{{revision}}"}', {"revision": 'a"'})
    assert rendered == 'x # it\'s\n + y{r="a\\""}'


def test_escaped_quotes_in_the_template_do_not_end_its_strings() -> None:
    rendered = render_query(r'x{a="q\"{{revision}}"}', {"revision": '"'})
    assert rendered == r'x{a="q\"\""}'


def test_a_variable_right_after_a_backslash_is_refused() -> None:
    with pytest.raises(TemplateError, match="backslash"):
        render_query(r'x{a="\{{revision}}"}', {"revision": "n"})


def test_an_unknown_variable_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(TemplateError, match=r"unknown template variable \{\{model\}\}.*\{\{revision\}\}"):
        render_query('x{m="{{model}}"}', {"model": "fraud"})


def test_a_variable_without_a_value_is_refused() -> None:
    with pytest.raises(TemplateError, match=r"no value for \{\{stableRevision\}\}"):
        render_query('x{r="{{stableRevision}}"}', {"revision": "a"})


@pytest.mark.parametrize("template", ['x{r="{{revision"}', 'x{r="revision}}"}', "x{{{revision}}}}"])
def test_unbalanced_braces_are_refused(template: str) -> None:
    with pytest.raises(TemplateError, match="unbalanced"):
        render_query(template, {"revision": "a"})


def test_template_variables_name_exactly_the_documented_variables() -> None:
    variables = template_variables(
        namespace="risk",
        name="fraud",
        revision="r",
        version="1",
        role="candidate",
        stable_revision="s",
        interval="1m",
    )
    assert set(variables) == TEMPLATE_VARIABLES
    assert variables["stableRevision"] == "s"


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(UnsafeValueError, match="surrogate"):
        escape_string("a\ud800", '"')
    with pytest.raises(TemplateError, match="surrogate"):
        render_query('x{r="{{revision}}"}', {"revision": "\udfff"})


def test_unprintable_characters_are_escaped_readably() -> None:
    assert escape_string("a\x00b\u2028c\td", '"') == "a\\u0000b\\u2028c\\td"
    assert escape_string("\U000e0001", '"') == "\\U000e0001"


def test_quote_regex_escapes_what_go_quotemeta_escapes() -> None:
    assert quote_regex(r"1.2+3*?()|[]{}^$\-_/") == r"1\.2\+3\*\?\(\)\|\[\]\{\}\^\$\\-_/"
