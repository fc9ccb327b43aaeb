"""Durations as people write them in manifests: ``30s``, ``5m``, ``1h30m``, ``250ms``.

Why strings and not numbers: a manifest that says ``pause: 5m`` reads as what it
means, and the same spelling is what ``kubectl`` users know from probes and
timeouts. The grammar is deliberately a subset of Go's ``time.ParseDuration``
(numbers of up to five digits followed by ``ms``, ``s``, ``m`` or ``h``,
repeated), so that the API server's CEL ``duration()`` function and this
parser agree on every string the CRD accepts. Fractions (``1.5h``), signs and days are refused: they
are easy to misread and Go would accept some of them and not others.

The two annotated types, :data:`Duration` and :data:`Interval`, carry the CEL
rules that check the format at admission and their Python twins (see
:mod:`modeldeploy.api.rules`), so a field only has to be declared with one of
them to be checked the same way in both places.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from modeldeploy.api.rules import CelCheck

DURATION_PATTERN = r"^([0-9]{1,5}(ms|s|m|h))+$"
"""The grammar, as a regular expression that RE2 (CEL) and Python's ``re`` read alike.

At most five digits per number: with the length limit below, no accepted string
can overflow Go's duration range (about 290 years), where CEL's ``duration()``
would fail with a type error instead of our message."""

DURATION_MAX_LENGTH = 32
"""Upper bound on a duration string; keeps the CEL cost of ``matches()`` small."""

MINIMUM_INTERVAL_SECONDS = 5.0
"""Measurement intervals below this would hammer Prometheus and the API server."""

_FULL = re.compile(DURATION_PATTERN)
_PART = re.compile(r"([0-9]{1,5})(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class DurationError(ValueError):
    """A string that is not a duration in the accepted grammar."""


def is_duration(text: str) -> bool:
    """Whether ``text`` is a well-formed duration such as ``30s`` or ``1h30m``."""
    return len(text) <= DURATION_MAX_LENGTH and _FULL.fullmatch(text) is not None


def parse_duration(text: str) -> float:
    """Return the number of seconds ``text`` stands for (``"1h30m"`` -> ``5400.0``).

    Raises :class:`DurationError` for anything outside the grammar, including the
    empty string, so callers never silently get zero.
    """
    if not is_duration(text):
        raise DurationError(f"{text!r} is not a duration such as 30s, 5m or 1h30m")
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """Render seconds in the same grammar, largest units first (``5400`` -> ``"1h30m"``).

    Sub-millisecond remainders are rounded to the nearest millisecond; zero is
    ``"0s"``. ``parse_duration(format_duration(s)) == s`` for whole milliseconds.
    """
    if seconds < 0:
        raise DurationError(f"durations are never negative, got {seconds}")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s"), (millis, "ms")]
    return "".join(f"{value}{unit}" for value, unit in parts if value)


def _at_least_minimum_interval(text: str) -> bool:
    return not is_duration(text) or parse_duration(text) >= MINIMUM_INTERVAL_SECONDS


WELL_FORMED = CelCheck(
    rule=f"self.matches('{DURATION_PATTERN}')",
    message="{path} must be a duration such as 30s, 5m or 1h30m (units ms, s, m, h)",
    check=is_duration,
)

AT_LEAST_FIVE_SECONDS = CelCheck(
    # A malformed string is reported by WELL_FORMED alone: `true || error` is true in
    # CEL, so duration() is never called on it.
    rule=f"!self.matches('{DURATION_PATTERN}') || duration(self) >= duration('5s')",
    message="{path} must be at least 5s",
    check=_at_least_minimum_interval,
)


def at_most(limit: str) -> CelCheck:
    """A CEL rule (and its twin) bounding a duration from above, e.g. a webhook timeout of at most 30s.

    Every duration a tenant writes has a maximum, so that no manifest can hold a
    reconcile worker, a retry loop or a rollout for absurd lengths of time (a
    webhook timeout of 99999h); the message names the field and the limit.
    """
    seconds = parse_duration(limit)

    def check(text: str) -> bool:
        return not is_duration(text) or parse_duration(text) <= seconds

    return CelCheck(
        rule=f"!self.matches('{DURATION_PATTERN}') || duration(self) <= duration('{limit}')",
        message=f"{{path}} must be at most {limit}",
        check=check,
    )


Duration = Annotated[str, Field(max_length=DURATION_MAX_LENGTH), WELL_FORMED]
"""A duration string such as ``30s``, ``5m`` or ``1h30m``, checked at admission."""

Interval = Annotated[str, Field(max_length=DURATION_MAX_LENGTH), WELL_FORMED, AT_LEAST_FIVE_SECONDS]
"""A measurement interval: a :data:`Duration` of at least five seconds."""
