"""The retrain webhook: tell an ML platform that a model drifted, with retries and backoff.

The planner decides to retrain (and records it in status) before anything is
called, so a crash between the two repeats the call rather than losing it: the
receiver should treat ``(namespace, name, retrain)`` as an idempotency key. The
caller bounds those repeats (see :mod:`modeldeploy.reconcile.measure`).

Each attempt goes through :class:`~modeldeploy.analysis.outbound.Outbound`
(egress allow-list, no redirects, a total deadline per attempt, the answer
capped at :data:`MAX_ANSWER_BYTES` and never read into status). Only a 2xx is
success: a redirect is reported, not followed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from modeldeploy.analysis.outbound import Outbound, OutboundError
from modeldeploy.api import WebhookOutcome

BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
MAX_ANSWER_BYTES = 64 * 1024
"""The receiver's answer is not used; reading more than this is refused."""


def call_webhook(
    url: str,
    body: Mapping[str, Any],
    timeout: float,
    retries: int,
    outbound: Outbound,
    sleep: Callable[[float], None] = time.sleep,
) -> WebhookOutcome:
    """POST body as JSON; retry failures (network, 5xx, 429) with exponential backoff."""
    attempts = retries + 1
    last = ""
    data = json.dumps(dict(body)).encode()
    for attempt in range(1, attempts + 1):
        try:
            answer = outbound.request(
                "POST",
                url,
                deadline=timeout,
                max_body=MAX_ANSWER_BYTES,
                headers={"Content-Type": "application/json"},
                body=data,
            )
            if answer.ok:
                return WebhookOutcome(True, f"webhook answered {answer.status} (attempt {attempt})")
            last = answer.error_class
            if answer.status < 500 and answer.status != 429:
                break  # the receiver refused the request itself (or redirected): retrying will not help
        except OutboundError as error:
            last = error.kind
            if error.kind.startswith("refused by egress policy") or error.kind == "invalid URL":
                break  # the admin's rules will not change between attempts
        if attempt < attempts:
            sleep(min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS * 2 ** (attempt - 1)))
    return WebhookOutcome(False, f"webhook failed after {attempt} attempt(s): {last}")
