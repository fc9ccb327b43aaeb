"""What a round of measurements concluded, in the words both the analysis layer and the planner use.

The analysis layer produces these (from Prometheus answers, from the retrain
webhook's reply); the planner reads them as its inputs. They live here, below
both, so that there is one type for each and neither layer imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class VerdictKind(StrEnum):
    """What the metrics say a stage should do."""

    PENDING = "Pending"
    PASS = "Pass"
    HOLD = "Hold"
    FAIL = "Fail"
    ROLLBACK_INCONCLUSIVE = "RollbackInconclusive"


@dataclass(frozen=True)
class Verdict:
    """The decision with a CamelCase ``reason`` (history, Events) and a ``message`` for people."""

    kind: VerdictKind
    reason: str
    message: str
    metric: str | None = None
    """The metric that decided it (Fail, RollbackInconclusive, Hold), if one did."""

    @property
    def passed(self) -> bool:
        return self.kind == VerdictKind.PASS

    @property
    def rollback(self) -> bool:
        """Whether the candidate must be rolled back now."""
        return self.kind in (VerdictKind.FAIL, VerdictKind.ROLLBACK_INCONCLUSIVE)


@dataclass(frozen=True)
class WebhookOutcome:
    """The retrain webhook's answer: accepted (2xx/3xx) or not, and a line for ``status.retrain.message``."""

    ok: bool
    message: str
