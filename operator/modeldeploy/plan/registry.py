"""spec.model.registry: folding the registry's answer into status, and the spec it makes.

The registry names the version (an alias's target, or a pinned version) and
its URI; the planner then sees the spec a person would have written with that
version and URI pinned (:func:`resolved_spec`), so the revision, its name and
its hash are the very ones of that hand-written spec, and the rollout goes
through ``spec.strategy`` as for any other change. The spec in the API server
is never edited, so a GitOps tool sees no drift.

What the registry last said lives in ``status.registry`` (rule 6): when the
registry cannot be reached, the last answer stands, nothing changes, and the
``RegistryReachable`` condition says why; the operator never rolls forward or
back on its own. Before any answer there is nothing to roll out:
:func:`resolved_spec` gives None and the planner holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from modeldeploy.api import (
    Condition,
    ConditionType,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RegistryRef,
    RegistryStatus,
)
from modeldeploy.plan.conditions import set_condition
from modeldeploy.plan.inputs import RegistryRead
from modeldeploy.plan.outputs import Event

MESSAGE_LIMIT = 1024


@dataclass(frozen=True)
class RegistryFold:
    """The new ``status.registry`` and conditions, and the Events the change is worth."""

    registry: RegistryStatus | None
    conditions: list[Condition]
    events: tuple[Event, ...] = ()


def selector(ref: RegistryRef) -> str:
    """``fraud-detector@challenger`` or ``fraud-detector/3``: how messages name the reference."""
    return f"{ref.model}@{ref.alias}" if ref.alias is not None else f"{ref.model}/{ref.version}"


def same_reference(ref: RegistryRef, known: RegistryStatus | None) -> bool:
    """Whether ``known`` answers ``ref`` (same provider, model and alias, or the pinned version)."""
    if known is None or (known.provider, known.model, known.alias) != (ref.provider, ref.model, ref.alias):
        return False
    return ref.alias is not None or known.version == ref.version


def fold_registry(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    read: RegistryRead | None,
    now: datetime,
    generation: int,
) -> RegistryFold:
    ref = spec.model.registry
    kind = ConditionType.REGISTRY_REACHABLE
    if ref is None:
        return RegistryFold(None, [c for c in status.conditions if c.type != kind])
    known = status.registry if same_reference(ref, status.registry) else None
    if known is None:
        # A new reference: nothing of the old answer applies; past history is not the registry's to hear.
        known = RegistryStatus(
            provider=ref.provider,
            model=ref.model,
            alias=ref.alias,
            reported_until=_reported_from(status.registry, status.history),
        )
    known = _keep_serving_cards(known, status)
    if read is None:
        return RegistryFold(known, list(status.conditions))
    events: list[Event] = []
    new = known
    if read.reported_until is not None or read.write_error != known.write_error:
        new = new.model_copy(
            update={
                "reported_until": read.reported_until or known.reported_until,
                "write_error": read.write_error[:MESSAGE_LIMIT] if read.write_error else None,
            }
        )
        if read.write_error and read.write_error != known.write_error:
            events.append(
                Event(
                    "Warning", "RegistryWriteFailed", f"writing outcomes to the registry: {read.write_error}"
                )
            )
    if read.version is None and read.error is None:
        return RegistryFold(new, list(status.conditions), tuple(events))  # written back, not read
    if read.version is not None:
        pinned = ref.version is not None and read.version != ref.version
        if pinned:
            read = RegistryRead(reason="BadAnswer", error=f"the registry answered version {read.version}")
        elif (read.version, read.uri) != (known.version, known.uri) or read.card != known.card:
            cards = dict(new.cards)
            if known.version is not None and known.card is not None and known.version != read.version:
                cards[known.version] = known.card  # still serving (stable) while the new one rolls out
            cards.pop(read.version or "", None)
            new = new.model_copy(
                update={
                    "version": read.version,
                    "uri": read.uri,
                    "card": read.card,
                    "cards": cards,
                    "resolved_at": now,
                }
            )
            new = _keep_serving_cards(new, status)
            if known.version is not None and known.version != read.version:
                events.append(
                    Event(
                        "Normal",
                        "RegistryVersionChanged",
                        f"{selector(ref)} moved from version {known.version} to {read.version}",
                    )
                )
    reachable = read.version is not None
    if reachable:
        message = f"{selector(ref)} is version {read.version}"
    else:
        held = f"; version {new.version} stays" if new.version else "; nothing is rolled out until it answers"
        message = f"spec.model.registry: {read.error or read.reason}{held}"
    previous = status.condition(kind)
    conditions = set_condition(
        status.conditions,
        kind,
        reachable,
        "Resolved" if reachable else read.reason,
        message[:MESSAGE_LIMIT],
        now,
        generation,
    )
    if not reachable and (previous is None or previous.status != "False" or previous.reason != read.reason):
        events.append(Event("Warning", f"Registry{read.reason}", message[:MESSAGE_LIMIT]))
    return RegistryFold(new, conditions, tuple(events))


def _keep_serving_cards(registry: RegistryStatus, status: ModelDeploymentStatus) -> RegistryStatus:
    """Only the cards of versions that still serve (stable, candidate) are kept beside the resolved one."""
    serving = {r.version for r in (status.stable, status.candidate) if r is not None}
    serving.add(registry.version or "")
    kept = {v: card for v, card in registry.cards.items() if v in serving and v != registry.version}
    if kept == registry.cards:
        return registry
    return registry.model_copy(update={"cards": dict(sorted(kept.items())[-2:])})


def _reported_from(previous: RegistryStatus | None, history: Sequence[HistoryEntry]) -> datetime | None:
    """Where write-back starts for a new reference: after the history that is already there."""
    if previous is not None and previous.reported_until is not None:
        latest = max((h.at for h in history), default=previous.reported_until)
        return max(latest, previous.reported_until)
    return max((h.at for h in history), default=None)


def resolved_spec(spec: ModelDeploymentSpec, registry: RegistryStatus | None) -> ModelDeploymentSpec | None:
    """The spec with the registry's version and URI pinned, as a person would write it; None: not known yet.

    ``spec.model.uri``, when written, wins over the registry's URI.
    """
    ref = spec.model.registry
    if ref is None:
        return spec
    if registry is None or registry.version is None or not same_reference(ref, registry):
        return None
    model = spec.model.model_copy(
        update={"version": registry.version, "uri": spec.model.uri or registry.uri, "registry": None}
    )
    return spec.model_copy(update={"model": model})


def unreported(registry: RegistryStatus | None, history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    """History entries not yet written back to the registry, oldest first."""
    if registry is None:
        return []
    since = registry.reported_until
    return [h for h in history if since is None or h.at > since]
