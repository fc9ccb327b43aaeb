"""Durations: the grammar the CRD's CEL rules accept is exactly what the parser reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modeldeploy.api.durations import DurationError, format_duration, is_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("0s", 0), ("1h0m5s", 3605), ("2m2m", 240)],
)
def test_parse_duration_returns_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1d", "1.5h", "-5s", "5 m", "5M", "h", "123456s", "5s" * 20])
def test_parse_duration_refuses_what_admission_refuses(text: str) -> None:
    assert not is_duration(text)
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (0.25, "250ms"), (90, "1m30s"), (5400, "1h30m"), (3605, "1h5s")]
)
def test_format_duration_writes_largest_units_first(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=99_999 * 3_600_000))
def test_format_then_parse_round_trips_whole_milliseconds(millis: int) -> None:
    assert parse_duration(format_duration(millis / 1000)) == pytest.approx(millis / 1000)


def test_format_duration_refuses_negative_time() -> None:
    with pytest.raises(DurationError):
        format_duration(-1)
