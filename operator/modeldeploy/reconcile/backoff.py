"""How long to wait before retrying a reconcile that failed: exponential, jittered, Retry-After honoured.

A fixed retry interval turns an overloaded API server (429, 5xx) into a
synchronised crowd: every failing key comes back at the same moment, forever.
Here the n-th failure in a row of one key waits ``base * factor**(n-1)``
seconds, capped at ``cap``, with "equal jitter" (a uniformly random point in
the upper half of that ceiling: never less than half, so the exponential
growth is kept, and keys that failed together spread out). When the API
server said how long to wait (``Retry-After``), the wait is at least that
(bounded by ``cap``, so a hostile or broken proxy cannot park a key forever).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float = 1.0
    factor: float = 2.0
    cap: float = 120.0
    random: Callable[[], float] = random.random

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1 for the first)."""
        ceiling = min(self.cap, self.base * self.factor ** min(max(0, failures - 1), 64))
        wait = ceiling / 2 + self.random() * ceiling / 2
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.cap))
        return wait
