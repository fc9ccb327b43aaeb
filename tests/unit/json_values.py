"""JSON values as kopf and the API server hand them over (tuples and mapping views included), and
what a plain deep copy of one is: for property tests of the operator's copies of a body."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from hypothesis import strategies as st

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
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
    """A deep copy into plain dicts and lists, as plainly as it can be written."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def containers(value: Any) -> set[int]:
    """The identities of every dict, list, tuple and mapping in ``value``."""
    if isinstance(value, Mapping):
        return {id(value), *(i for item in value.values() for i in containers(item))}
    if isinstance(value, list | tuple):
        return {id(value), *(i for item in value for i in containers(item))}
    return set()


def is_plain_copy(copied: Any, value: Any) -> bool:
    """``copied`` equals ``plain(value)``, has its types, and shares no container with ``value``."""
    expected = plain(value)
    return (
        copied == expected and type(copied) is type(expected) and not containers(copied) & containers(value)
    )
