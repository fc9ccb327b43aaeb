"""A load generator replaying labelled held-out rows through the proxy at a steady rate.

It sends ``{"features": [...], "label": y}`` for each held-out row in turn
(round and round), paced to ``rate`` requests per second, and stops by itself
after ``max_requests`` or ``max_seconds``, or when asked. It tallies what users
saw, by the revision that answered: requests, errors, correct answers.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from modeldeploy_dev.demo.models import HeldOut
from modeldeploy_dev.demo.proxy import SERVED_BY

PREDICT_PATH = "/v1/models/digits:predict"


@dataclass
class Tally:
    sent: int = 0
    errors: int = 0
    answered: Counter[str] = field(default_factory=Counter)  # by revision
    correct: Counter[str] = field(default_factory=Counter)

    def accuracy(self, revision: str) -> float | None:
        return self.correct[revision] / self.answered[revision] if self.answered[revision] else None


def request_body(held_out: HeldOut, index: int) -> bytes:
    i = index % len(held_out.labels)
    return json.dumps({"features": held_out.rows[i], "label": held_out.labels[i]}).encode()


class Load:
    def __init__(
        self, port: int, held_out: HeldOut, rate: float, max_requests: int, max_seconds: float
    ) -> None:
        self.port = port
        self.held_out = held_out
        self.rate = rate
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():  # never started when a scenario failed before the load began
            self._thread.join(10)

    def snapshot(self) -> Tally:
        with self._lock:
            return Tally(
                self.tally.sent, self.tally.errors, Counter(self.tally.answered), Counter(self.tally.correct)
            )

    def _run(self) -> None:
        started = time.monotonic()
        period = 1.0 / self.rate
        due = started
        index = 0
        while index < self.max_requests and time.monotonic() - started < self.max_seconds:
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            due = max(due + period, time.monotonic() - period)  # a late request never causes a burst
            self._one(index)
            index += 1

    def _one(self, index: int) -> None:
        label = self.held_out.labels[index % len(self.held_out.labels)]
        revision, prediction = "", None
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                connection.request(
                    "POST",
                    PREDICT_PATH,
                    body=request_body(self.held_out, index),
                    headers={"Content-Type": "application/json"},
                )
                response = connection.getresponse()
                body = response.read()
                revision = response.getheader(SERVED_BY) or ""
                if response.status == 200:
                    prediction = json.loads(body)["prediction"]
            finally:
                connection.close()
        except (OSError, ValueError, KeyError):
            prediction = None
        with self._lock:
            self.tally.sent += 1
            if prediction is None:
                self.tally.errors += 1
                return
            self.tally.answered[revision] += 1
            if prediction == label:
                self.tally.correct[revision] += 1
