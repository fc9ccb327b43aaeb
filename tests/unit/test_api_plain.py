"""Bodies are copied into plain dicts and lists before a model reads them, whatever mapping they came in."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from modeldeploy.api.manifest import _plain

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4).map(MappingProxyType)
    ),
    max_leaves=25,
)


def plain(value: Any) -> Any:
    """The definition, as plainly as it can be written."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def containers(value: Any) -> list[int]:
    if isinstance(value, Mapping):
        return [id(value), *(i for item in value.values() for i in containers(item))]
    if isinstance(value, list | tuple):
        return [id(value), *(i for item in value for i in containers(item))]
    return []


@given(value=VALUES)
def test_a_body_is_copied_into_plain_dicts_and_lists_sharing_no_container(value: Any) -> None:
    copied = _plain(value)
    assert copied == plain(value)
    assert type(copied) is type(plain(value))
    assert not set(containers(copied)) & set(containers(value))
