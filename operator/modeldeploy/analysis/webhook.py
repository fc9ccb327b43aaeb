"""The retrain webhook: tell an ML platform that a model drifted, with retries and backoff.

The planner decides to retrain (and records it in status) before anything is
called, so a crash between the two repeats the call rather than losing it: the
receiver should treat ``(namespace, name, retrain)`` as an idempotency key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class WebhookOutcome:
    ok: bool
    message: str


BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0


def call_webhook(
    url: str,
    body: Mapping[str, Any],
    timeout: float,
    retries: int,
    sleep: Callable[[float], None] = time.sleep,
) -> WebhookOutcome:
    """POST body as JSON; retry failures (network, 5xx, 429) with exponential backoff."""
    attempts = retries + 1
    last = ""
    with requests.Session() as session:
        session.trust_env = False
        for attempt in range(1, attempts + 1):
            try:
                response = session.post(url, json=dict(body), timeout=timeout)
                if response.status_code < 400:
                    return WebhookOutcome(
                        True, f"webhook answered {response.status_code} (attempt {attempt})"
                    )
                last = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # the receiver refused the request itself: retrying will not help
            except requests.RequestException as error:
                last = type(error).__name__
            if attempt < attempts:
                sleep(min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS * 2 ** (attempt - 1)))
    return WebhookOutcome(False, f"webhook failed after {attempt} attempt(s): {last}")
