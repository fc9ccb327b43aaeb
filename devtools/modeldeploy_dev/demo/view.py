"""What the terminal shows: one compact line per second while a scenario runs, and the closing summary.

Pure functions of the ModelDeployment's status (as read from the API) and of
what the demo counted itself; the scenario prints them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

VERDICTS = {"Successful": "ok", "Failed": "FAIL", "Inconclusive": "?", "Pending": "..."}


def stage_text(status: Mapping[str, Any], steps: Sequence[tuple[int, str]]) -> str:
    candidate = status.get("candidate") or {}
    stage = candidate.get("stage")
    if not stage:
        return "-"
    if stage == "Canary" and candidate.get("step") is not None:
        step = int(candidate["step"])
        weight = steps[step][0] if step < len(steps) else candidate.get("weight", "?")
        return f"Canary {step + 1}/{len(steps)} {weight}%"
    return str(stage)


def traffic_text(status: Mapping[str, Any]) -> str:
    versions = {role: (status.get(role) or {}).get("version", "?") for role in ("stable", "candidate")}
    parts: list[str] = []
    for entry in status.get("traffic") or []:
        version = versions.get(entry.get("role", ""), entry.get("revision", "?"))
        text = f"{version} {entry.get('weight', 0)}%"
        if entry.get("mirrorPercent"):
            text += f" (+mirror {entry['mirrorPercent']}%)"
        parts.append(text)
    return " / ".join(parts) or "-"


def number(value: Any) -> str:
    if value is None:
        return "n/a"
    try:
        return f"{float(value):.3f}"
    except (TypeError, ValueError):
        return str(value)


def metric_text(result: Mapping[str, Any], thresholds: Mapping[str, str]) -> str:
    name = str(result.get("metric", "?"))
    text = f"{name} {number(result.get('value'))}"
    if result.get("stableValue") is not None:
        text += f" (stable {number(result['stableValue'])})"
    bound = thresholds.get(name)
    if bound:
        text += f" {bound}"
    return f"{text} {VERDICTS.get(str(result.get('phase')), result.get('phase', ''))}"


def live_line(
    clock: str,
    status: Mapping[str, Any],
    steps: Sequence[tuple[int, str]],
    thresholds: Mapping[str, str],
    users: Mapping[str, int],
    servers: Mapping[str, int] | None = None,
) -> str:
    """One line: ``12:00:05 Progressing Shadow | 1.0.0 100% (+mirror 100%) | error-rate 0.000 <= 0.01 ok``,
    then the answers users got by version, and those the model servers counted (live and mirrored)."""
    parts = [f"{clock} {status.get('phase', '-'):<11} {stage_text(status, steps):<14}", traffic_text(status)]
    parts += [metric_text(r, thresholds) for r in status.get("analysis") or []]
    if users:
        parts.append("users got " + " ".join(f"{v} {n}/s" for v, n in sorted(users.items())))
    if servers:
        parts.append("servers answered " + " ".join(f"{v} {n}/s" for v, n in sorted(servers.items())))
    return " | ".join(parts)


def per_second(before: Mapping[str, int], after: Mapping[str, int], seconds: float) -> dict[str, int]:
    """Answers per second by key between two counter snapshots (keys with none left out)."""
    rates = {k: round((after[k] - before.get(k, 0)) / seconds) for k in after} if seconds > 0 else {}
    return {k: v for k, v in rates.items() if v > 0}


def culprit(message: str) -> str:
    """The metric a MetricFailed message names first (``misclassification-rate 0.4 - stable ...``)."""
    return message.split(" ", 1)[0].rstrip(":")


@dataclass(frozen=True)
class StepSplit:
    """One canary step: its declared weight, and the answers the servers counted during it."""

    weight: int
    to_stable: int
    to_candidate: int

    @property
    def observed(self) -> float | None:
        total = self.to_stable + self.to_candidate
        return self.to_candidate / total if total else None

    def text(self) -> str:
        observed = self.observed
        seen = f"{observed:.1%}" if observed is not None else "n/a"
        return (
            f"declared {self.weight}%, observed {seen} at the servers "
            f"({self.to_candidate} of {self.to_stable + self.to_candidate} answers)"
        )


@dataclass
class Scenario:
    title: str
    version: str
    expected: str  # the outcome: Promoted or RolledBack
    expected_metric: str | None = None  # for a rollback: the metric that must cause it
    started: str = ""
    timeline: list[str] = field(default_factory=list)
    outcome: str | None = None
    reason: str = ""
    message: str = ""
    at: str = ""
    seconds: float = 0.0
    splits: list[StepSplit] = field(default_factory=list)
    registry: list[str] = field(default_factory=list)  # what the model registry said after the outcome

    @property
    def as_expected(self) -> bool:
        if self.outcome != self.expected:
            return False
        return self.expected_metric is None or (
            self.reason == "MetricFailed" and culprit(self.message) == self.expected_metric
        )

    def verdict(self) -> str:
        seen = self.outcome or "no outcome"
        if self.outcome == "RolledBack" and self.reason == "MetricFailed":
            seen += f" by {culprit(self.message)}"
        elif self.reason:
            seen += f" ({self.reason})"
        expected = self.expected + (f" by {self.expected_metric}" if self.expected_metric else "")
        if self.as_expected:
            return f"version {self.version} {seen}, as expected"
        return f"version {self.version} {seen}, NOT as expected (wanted {expected})"


def summary(
    scenarios: Sequence[Scenario],
    accuracies: Mapping[str, float],
    answered: Mapping[str, int],
    correct: Mapping[str, int],
    sent: int,
    errors: int,
    elapsed: float,
    servers: Mapping[str, tuple[int, int, float | None]] | None = None,
    failures: Sequence[str] = (),
    models: str = "",
) -> list[str]:
    """``servers``: by version, the answers and failures its model servers counted (live and
    mirrored) and their accuracy on labelled requests; ``models``: where the versions come from."""
    lines = ["", "=== Summary ===", ""]
    source = f" ({models})" if models else ""
    lines.append(
        f"Models{source}, trained on sklearn's load_digits; accuracy on held-out rows: "
        + ", ".join(f"version {v} {a:.3f}" for v, a in accuracies.items())
    )
    for i, scenario in enumerate(scenarios, 1):
        lines += ["", f"Scenario {i}: {scenario.title}: {scenario.verdict()} ({scenario.seconds:.0f}s)"]
        lines += [f"  {entry}" for entry in scenario.timeline]
        lines += [f"  canary step {n}: {split.text()}" for n, split in enumerate(scenario.splits, 1)]
        if scenario.outcome:
            lines.append(f"  -> {scenario.at} {scenario.outcome} ({scenario.reason}): {scenario.message}")
        lines += [f"  {line}" for line in scenario.registry]
    lines += ["", f"Live traffic through the gateway: {sent} requests, {errors} failed; answers users got:"]
    for version in accuracies:
        count = answered.get(version, 0)
        share = f", accuracy {correct.get(version, 0) / count:.3f}" if count else " (never served live)"
        lines.append(f"  version {version}: {count} answers{share}")
    lines += [f"  failed: {failure}" for failure in failures]
    if servers is not None:
        lines += ["", "Answers counted at the model servers (MLServer's own counters; live and mirrored):"]
        for version in accuracies:
            served, failed, accuracy = servers.get(version, (0, 0, None))
            rate = f", accuracy {accuracy:.3f} on labelled requests" if accuracy is not None else ""
            lines.append(f"  version {version}: {served} answers, {failed} failures{rate}")
    ok = all(s.as_expected for s in scenarios)
    lines += [
        "",
        f"{'OK' if ok else 'FAILED'}: {'every' if ok else 'not every'} scenario ended as expected, "
        f"in {int(elapsed // 60)}m{int(elapsed % 60):02d}s",
    ]
    return lines
