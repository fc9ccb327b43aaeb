"""Timestamps on the wire: RFC 3339 in UTC to the second, the way Kubernetes writes them.

One spelling for every timestamp the operator writes itself (bookkeeping in
``status.operatorState``, Events, ``status.action.requestedAt`` from the CLI),
so that nothing has to guess which format a string is in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, PlainSerializer

WIRE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(when: datetime) -> str:
    """``2026-11-22T10:00:00Z``: UTC, whole seconds (as metav1.Time)."""
    return when.astimezone(UTC).strftime(WIRE_FORMAT)


WireTime = Annotated[AwareDatetime, PlainSerializer(format_time, return_type=str, when_used="json")]
"""A timezone-aware time, written as :func:`format_time` spells it."""
