"""The live view of one ModelDeployment, as `kubectl modeldeploy get NAME [--watch]` shows it.

Modelled on `kubectl argo rollouts get rollout --watch`: one screen that says
where the rollout stands (phase, stage, step i/n with a bar), where traffic
goes (a bar per revision and role, mirroring), what the analysis measured
against which threshold, the conditions, the fallback, monitoring after
promotion, and the last Events.

:func:`render` is a pure function of the object, its Events, the time and the
terminal width, so the screen is snapshot-tested (tests/snapshots/get_view.txt)
and the watch loop only fetches, clears and prints. It reads the raw object
(dicts as the API server returns them), not the typed models: a view must
still show something useful for a status written by a newer operator, and it
renders fields that may appear later (``status.monitoring``, ``status.retrain``)
when present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modeldeploy.cli.output import BOLD, DIM, GREEN, RED, YELLOW, age, bar, number, paint, parse_time, table

STAGE_ORDER = ("Warmup", "Shadow", "Canary", "BlueGreen")
STRATEGY_KEYS = {"Warmup": "warmup", "Shadow": "shadow", "Canary": "canary", "BlueGreen": "blueGreen"}
PHASE_COLORS = {
    "Stable": GREEN,
    "Progressing": YELLOW,
    "Paused": YELLOW,
    "Pending": YELLOW,
    "RolledBack": RED,
    "Degraded": RED,
    "Invalid": RED,
}
VERDICT_COLORS = {"Successful": GREEN, "Failed": RED, "Inconclusive": YELLOW, "Pending": DIM}
EVENTS_SHOWN = 5


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class RevisionSize:
    """One revision's replicas as its Deployment and HPA show them.

    ``current``: pods that exist; ``desired``: the Deployment's count (set by the
    HPA when there is one); ``bounds``: the HPA's min and max, None when fixed.
    """

    current: int
    desired: int
    ready: int
    bounds: tuple[int, int] | None = None

    @classmethod
    def of(cls, deployment: Mapping[str, Any], autoscaler: Mapping[str, Any] | None) -> RevisionSize:
        spec, status = _dict(deployment.get("spec")), _dict(deployment.get("status"))
        bounds = None
        if autoscaler is not None:
            hpa = _dict(autoscaler.get("spec"))
            bounds = (int(hpa.get("minReplicas", 1)), int(hpa.get("maxReplicas", 0)))
        return cls(
            current=int(status.get("replicas", 0)),
            desired=int(spec.get("replicas", 0)),
            ready=int(status.get("readyReplicas", 0)),
            bounds=bounds,
        )


def sizes_of(
    deployments: Sequence[Mapping[str, Any]], autoscalers: Sequence[Mapping[str, Any]]
) -> dict[str, RevisionSize]:
    """Each revision's size, by Deployment name, from its Deployment and the HPA targeting it."""
    by_target = {_dict(_dict(h.get("spec")).get("scaleTargetRef")).get("name"): h for h in autoscalers}
    return {
        str(_dict(d.get("metadata")).get("name")): RevisionSize.of(
            d, by_target.get(_dict(d.get("metadata")).get("name"))
        )
        for d in deployments
    }


def render(
    obj: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    now: datetime,
    width: int,
    color: bool = False,
    sizes: Mapping[str, RevisionSize] | None = None,
) -> str:
    """The whole screen for ``obj``; ``events`` are its core/v1 Events in any order.

    ``sizes`` (by revision) adds each revision's current, desired, ready and
    min/max replicas; without it the revisions table shows none.
    """
    view = _View(obj, now, max(60, width), color, sizes or {})
    sections = [
        view.header(),
        view.revisions(),
        view.progress(),
        view.traffic(),
        view.analysis(),
        view.conditions(),
        view.fallback(),
        view.monitoring(),
        view.events(events),
    ]
    lines = [line[: view.width].rstrip() if not color else line.rstrip() for s in sections if s for line in s]
    return "\n".join(lines) + "\n"


class _View:
    def __init__(
        self,
        obj: Mapping[str, Any],
        now: datetime,
        width: int,
        color: bool,
        sizes: Mapping[str, RevisionSize],
    ) -> None:
        self.sizes = sizes
        self.meta = _dict(obj.get("metadata"))
        self.spec = _dict(obj.get("spec"))
        self.status = _dict(obj.get("status"))
        self.now, self.width, self.color = now, width, color
        self.bar_width = max(12, min(42, width - 58))

    def _title(self, text: str) -> str:
        return paint(text, BOLD, self.color)

    # --- sections, each a list of lines (empty: not shown) ----------------------------

    def header(self) -> list[str]:
        phase = str(self.status.get("phase") or "Unknown")
        name, namespace = self.meta.get("name", "?"), self.meta.get("namespace", "?")
        lines = [
            f"{self._title('Name:')}       {name}",
            f"{self._title('Namespace:')}  {namespace}",
            f"{self._title('Phase:')}      {paint(phase, PHASE_COLORS.get(phase), self.color)}",
        ]
        if self.status.get("message"):
            lines.append(f"{self._title('Message:')}    {self.status['message']}")
        model = _dict(self.spec.get("model"))
        registry = _dict(model.get("registry"))
        if registry:
            resolved = _dict(self.status.get("registry"))
            selector = (
                f"@{registry['alias']}" if registry.get("alias") else f"/{registry.get('version', '?')}"
            )
            source = f"{registry.get('provider', '?')}:{registry.get('model', '?')}{selector}"
            lines.append(
                f"{self._title('Model:')}      {model.get('name', '?')} {resolved.get('version', '?')} "
                f"(registry {source})"
            )
        elif model:
            lines.append(f"{self._title('Model:')}      {model.get('name', '?')} {model.get('version', '?')}")
        generation, observed = self.meta.get("generation"), self.status.get("observedGeneration")
        if generation is not None and observed is not None and generation != observed:
            lines.append(
                f"{self._title('Note:')}       spec generation {generation} not yet observed ({observed})"
            )
        if self.spec.get("paused"):
            lines.append(f"{self._title('Paused:')}     spec.paused is true")
        return lines

    def revisions(self) -> list[str]:
        stable, candidate = _dict(self.status.get("stable")), _dict(self.status.get("candidate"))
        rows = []
        if stable:
            rows.append(
                [
                    "stable",
                    stable.get("revision", "?"),
                    stable.get("version", "?"),
                    age(stable.get("since"), self.now),
                ]
            )
        if candidate:
            rows.append(
                [
                    "candidate",
                    candidate.get("revision", "?"),
                    candidate.get("version", "?"),
                    age(candidate.get("stageStartedAt"), self.now),
                ]
            )
        if not rows:
            return []
        headers = ["ROLE", "REVISION", "VERSION", "AGE"]
        if self.sizes:
            headers += ["CURRENT", "DESIRED", "READY", "MIN/MAX"]
            for row in rows:
                size = self.sizes.get(row[1])
                if size is None:
                    row += ["-", "-", "-", "-"]
                else:
                    bounds = f"{size.bounds[0]}/{size.bounds[1]}" if size.bounds else "fixed"
                    row += [str(size.current), str(size.desired), str(size.ready), bounds]
        return ["", self._title("Revisions"), *_indent(table(headers, rows))]

    def progress(self) -> list[str]:
        candidate = _dict(self.status.get("candidate"))
        if not candidate:
            return []
        stage = str(candidate.get("stage", "?"))
        strategy = _dict(self.spec.get("strategy"))
        planned = [s for s in STAGE_ORDER if strategy.get(STRATEGY_KEYS[s])]
        path = []
        for name in planned or [stage]:
            path.append(paint(f"[{name}]", BOLD, self.color) if name == stage else name)
        if stage not in planned:
            path.insert(0, paint(f"[{stage}]", BOLD, self.color))
        lines = ["", self._title("Progress"), f"  Stage:   {' > '.join([*path, 'Stable'])}"]
        steps = _list(_dict(strategy.get("canary")).get("steps"))
        step = candidate.get("step")
        if stage == "Canary" and steps and isinstance(step, int):
            index = min(step, len(steps) - 1)
            pause = _dict(steps[index]).get("pause")
            waiting = f"pause {pause}" if pause else "waits for promote"
            lines.append(
                f"  Step:    {step + 1}/{len(steps)}  {bar((step + 1) / len(steps), self.bar_width)}  "
                f"weight {candidate.get('weight', 0)}%  ({waiting})"
            )
        elif stage in ("Shadow", "BlueGreen", "Warmup"):
            duration = {
                "Shadow": _dict(strategy.get("shadow")).get("duration"),
                "BlueGreen": _dict(strategy.get("blueGreen")).get("previewDuration"),
                "Warmup": None,
            }[stage]
            if duration:
                lines.append(f"  Hold:    {duration}")
        started = candidate.get("stageStartedAt")
        lines.append(
            f"  Started: {age(started, self.now)} ago" if started else "  Started: waiting for Ready replicas"
        )
        return lines

    def traffic(self) -> list[str]:
        shares = [_dict(s) for s in _list(self.status.get("traffic"))]
        if not shares:
            return []
        lines = ["", self._title("Traffic")]
        name_width = max(len(str(s.get("revision", ""))) for s in shares)
        for share in shares:
            weight = int(share.get("weight") or 0)
            line = (
                f"  {share.get('role', '?')!s:9}  {str(share.get('revision', '?')).ljust(name_width)}  "
                f"{weight:3d}%  {bar(weight / 100, self.bar_width)}"
            )
            mirror = share.get("mirrorPercent")
            if mirror:
                line += f"  mirror {mirror}%"
            lines.append(line)
        return lines

    def analysis(self) -> list[str]:
        results = [_dict(r) for r in _list(self.status.get("analysis"))]
        if not results:
            return []
        metrics = {
            str(m.get("name")): m for m in map(_dict, _list(_dict(self.spec.get("analysis")).get("metrics")))
        }
        return ["", self._title("Analysis"), *self._results(results, metrics)]

    def _results(self, results: list[dict[str, Any]], metrics: Mapping[str, dict[str, Any]]) -> list[str]:
        rows, phases = [], []
        for result in results:
            metric = metrics.get(str(result.get("metric")), {})
            phase = str(result.get("phase", "?"))
            phases.append(phase)
            rows.append(
                [
                    str(result.get("metric", "?")),
                    number(result.get("value")),
                    threshold(metric, result.get("stableValue")),
                    phase,
                    f"{result.get('failures', 0)}/{result.get('inconclusive', 0)}",
                    age(result.get("measuredAt"), self.now),
                ]
            )
        headers = ["METRIC", "VALUE", "THRESHOLD", "VERDICT", "FAIL/INCONCL", "MEASURED"]
        lines = _indent(table(headers, rows))
        if self.color:  # colour the verdict after alignment, so escape codes do not skew the columns
            lines = [lines[0]] + [
                line.replace(f"   {p}   ", f"   {paint(p, VERDICT_COLORS.get(p), True)}   ", 1)
                for line, p in zip(lines[1:], phases, strict=True)
            ]
        for result in results:
            if result.get("message") and result.get("phase") != "Successful":
                lines.append(f"    {result.get('metric')}: {result['message']}")
        return lines

    def conditions(self) -> list[str]:
        conditions = [_dict(c) for c in _list(self.status.get("conditions"))]
        if not conditions:
            return []
        rows = [
            [
                str(c.get("type", "?")),
                str(c.get("status", "?")),
                str(c.get("reason", "")),
                age(c.get("lastTransitionTime"), self.now),
                str(c.get("message", "")),
            ]
            for c in conditions
        ]
        return [
            "",
            self._title("Conditions"),
            *_indent(table(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], rows)),
        ]

    def fallback(self) -> list[str]:
        fallback = _dict(self.spec.get("fallback"))
        active = next(
            (
                c
                for c in map(_dict, _list(self.status.get("conditions")))
                if c.get("type") == "FallbackActive"
            ),
            {},
        )
        if not fallback and not active:
            return []
        mode = fallback.get("mode", "PreviousRevision") if fallback else "not configured"
        if active.get("status") == "True":
            state = paint("ACTIVE", RED, self.color) + f": all traffic on the fallback ({mode})"
            if active.get("message"):
                state += f": {active['message']}"
        else:
            state = f"standby ({mode})"
        return ["", f"{self._title('Fallback:')}   {state}"]

    def monitoring(self) -> list[str]:
        results = [_dict(r) for r in _list(self.status.get("monitoring"))]
        retrain = _dict(self.status.get("retrain"))
        if not results and not retrain:
            return []
        lines = ["", self._title("Monitoring")]
        if results:
            metrics = {
                str(m.get("name")): m
                for m in map(_dict, _list(_dict(self.spec.get("monitoring")).get("metrics")))
            }
            lines += self._results(results, metrics)
        if retrain:
            target = " and ".join(
                f"{label} {retrain[key]}"
                for key, label in (("job", "Job"), ("webhook", "webhook"))
                if retrain.get(key)
            )
            cause = " ".join(
                number(retrain[key]) if key == "value" else str(retrain[key])
                for key in ("metric", "value")
                if retrain.get(key) is not None
            )
            line = f"  Last retrain: {target or '?'} {retrain.get('outcome', '?')}"
            if retrain.get("at"):
                line += f", started {age(retrain['at'], self.now)} ago"
            if cause:
                line += f" on {cause}"
            if retrain.get("count"):
                line += f" (retraining #{retrain['count']})"
            lines.append(line)
            if retrain.get("message"):
                lines.append(f"    {retrain['message']}")
        return lines

    def events(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        if not events:
            return []
        latest = sorted(events, key=event_time)[-EVENTS_SHOWN:]
        rows = [
            [
                age(event_time(e), self.now),
                str(e.get("type", "")),
                str(e.get("reason", "")),
                str(e.get("message", "")),
            ]
            for e in latest
        ]
        title = self._title(f"Events (last {len(latest)})")
        return ["", title, *_indent(table(["AGE", "TYPE", "REASON", "MESSAGE"], rows))]


def threshold(metric: Mapping[str, Any], stable_value: Any = None) -> str:
    """What a metric must meet, as people write it: ``<= 0.01``, ``>= 0.9``, ``<= 1.2 x stable (0.2)``."""
    parts = []
    if metric.get("max") is not None:
        parts.append(f"<= {number(metric['max'])}")
    if metric.get("min") is not None:
        parts.append(f">= {number(metric['min'])}")
    compare = _dict(metric.get("compareToStable"))
    known = f" ({number(stable_value)})" if stable_value is not None else ""
    if compare.get("maxRatio") is not None:
        parts.append(f"<= {number(compare['maxRatio'])} x stable{known}")
    if compare.get("maxDiff") is not None:
        parts.append(f"<= stable{known} + {number(compare['maxDiff'])}")
    return ", ".join(parts) or "-"


def event_time(event: Mapping[str, Any]) -> str:
    """The most recent time an Event carries (series, lastTimestamp, eventTime, creation), for sorting."""
    series = _dict(event.get("series"))
    for value in (
        series.get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        _dict(event.get("metadata")).get("creationTimestamp"),
    ):
        if parse_time(value) is not None:
            return str(parse_time(value).isoformat())  # type: ignore[union-attr]
    return ""


def _indent(text: str) -> list[str]:
    return ["  " + line for line in text.rstrip("\n").split("\n")]
