"""Bodies are copied into plain dicts and lists before a model reads them, whatever mapping they came in."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from json_values import VALUES, is_plain_copy

from modeldeploy.api.manifest import _plain


@given(value=VALUES)
def test_a_body_is_copied_into_plain_dicts_and_lists_sharing_no_container(value: Any) -> None:
    assert is_plain_copy(_plain(value), value)
