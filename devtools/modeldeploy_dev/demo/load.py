"""A load generator replaying labelled held-out rows through the real node's gateway.

Each request is a V2 inference request for one held-out row, carrying the row's
true label in its parameters (the model server counts right answers from it),
sent to the gateway's ClusterIP with the route's hostname. ``workers`` threads
share the pace, ``rate`` requests per second in all, and stop by themselves
after ``max_requests`` or ``max_seconds``, or when asked. It tallies what users
saw, by the version that answered (the answer's ``model_version``): requests,
failed ones (any answer but 200, or none), right answers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from modeldeploy_dev.demo.models import HeldOut
from modeldeploy_dev.inference import Client


@dataclass
class Tally:
    sent: int = 0
    errors: int = 0
    answered: Counter[str] = field(default_factory=Counter)  # by version
    correct: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # the first few, to say what they were

    def accuracy(self, version: str) -> float | None:
        return self.correct[version] / self.answered[version] if self.answered[version] else None


class Load:
    def __init__(
        self,
        address: str,
        host: str,
        held_out: HeldOut,
        rate: float,
        max_requests: int,
        max_seconds: float,
        workers: int = 4,
    ) -> None:
        self.address = address
        self.host = host
        self.held_out = held_out
        self.rate = rate
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next = 0
        self._threads = [
            threading.Thread(target=self._run, args=(i, workers), name=f"load-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():  # never started when a scenario failed before the load began
                thread.join(15)

    def snapshot(self) -> Tally:
        with self._lock:
            return Tally(
                self.tally.sent,
                self.tally.errors,
                Counter(self.tally.answered),
                Counter(self.tally.correct),
                list(self.tally.failures),
            )

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.max_requests:
                return None
            self._next += 1
            return self._next - 1

    def _run(self, worker: int, workers: int) -> None:
        client = Client(self.address, 80, host=self.host, timeout=10)
        period = workers / self.rate
        started = time.monotonic()
        due = started + worker * period / workers
        try:
            while time.monotonic() - started < self.max_seconds:
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                due = max(due + period, time.monotonic() - period)  # a late request never causes a burst
                index = self._take()
                if index is None:
                    return
                self._one(client, index)
        finally:
            client.close()

    def _one(self, client: Client, index: int) -> None:
        i = index % len(self.held_out.labels)
        label = self.held_out.labels[i]
        failure = ""
        try:
            answer = client.infer([self.held_out.rows[i]], [label])
            if answer.status != 200 or answer.version is None:
                failure = f"HTTP {answer.status}: {answer.body[:200]!r}"
        except (OSError, ValueError, KeyError) as error:
            client.close()
            failure = f"{type(error).__name__}: {error}"
            answer = None
        with self._lock:
            self.tally.sent += 1
            if failure or answer is None or answer.version is None:
                self.tally.errors += 1
                if len(self.tally.failures) < 5:
                    self.tally.failures.append(f"{time.strftime('%H:%M:%S')} {failure}")
                return
            self.tally.answered[answer.version] += 1
            if answer.predictions[:1] == [label]:
                self.tally.correct[answer.version] += 1
