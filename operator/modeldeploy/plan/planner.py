"""The planner: from what is declared and what is observed to what must be done.

``plan(subject, observed, now)`` is a pure function. It never reads a clock
(``now`` is an argument), never performs I/O, and returns the whole desired
state each time (level-triggered), so a reconcile after a crash at any moment
simply plans again from ``status`` and the observed children.

Lifecycle, in order of precedence: deletion (route first, then Deployments and
Services, then the finalizer), an invalid spec (touch nothing, say why),
retirement (drain, remove serving objects, keep the record), then serving:
:func:`~modeldeploy.plan.decide.decide` into a frozen
:class:`~modeldeploy.plan.decision.Decision`, then
:func:`~modeldeploy.plan.render.render` it.

The rules from DESIGN.md that live here:

1. live traffic never goes to a revision with no Ready replicas: a new
   revision takes traffic only once all its replicas are Ready, and the route
   is only created once some revision serves;
2. weights sum to 100 (checked by :class:`~modeldeploy.plan.routes.Split`);
3. the stable revision is scaled down only after another revision has taken
   all traffic, as observed on the stable Service;
5. every transition leaves a history entry and an Event;
6. all state lives in ``status``, including the sources of past revisions
   (``status.operatorState.revisions``), so any of them can be re-rendered.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from modeldeploy.api import (
    ConditionType,
    HistoryEntry,
    InvalidManifestError,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Outcome,
    Phase,
    Problem,
    check_spec,
)
from modeldeploy.plan.conditions import set_condition
from modeldeploy.plan.decide import context, decide
from modeldeploy.plan.inputs import Inputs, Observed, Subject
from modeldeploy.plan.outputs import FINALIZER, Event, Plan
from modeldeploy.plan.registry import fold_registry, resolved_spec, selector
from modeldeploy.plan.render import render
from modeldeploy.plan.routes import ROUTE_KINDS
from modeldeploy.plan.status import trim_history, wire

CLEANUP_RECHECK_SECONDS = 5.0
"""A deleted ModelDeployment whose children are still in the cache is looked at again after this
long, even if no watch event comes (the reconciler then lists them again: a watch gap)."""


def plan(subject: Subject, observed: Observed, now: datetime, inputs: Inputs | None = None) -> Plan:
    if subject.deleting:
        return _plan_deletion(subject, observed)
    decided = _plan_living(subject, observed, now, inputs)
    if FINALIZER not in subject.finalizers:
        # Before anything else is written: a child must never exist without the finalizer that
        # lets deletion take it down in order (and keeps this operator from re-creating it
        # while the garbage collector deletes it).
        decided = replace(decided, finalizer=True)
    return decided


def _plan_living(subject: Subject, observed: Observed, now: datetime, inputs: Inputs | None) -> Plan:
    status = _lenient_status(subject)
    try:
        spec = subject.parsed_spec
        problems = check_spec(spec)
    except InvalidManifestError as error:
        problems = list(error.problems)
    if problems:
        return _plan_invalid(subject, status, problems, now)
    inputs = inputs or Inputs()
    registry = fold_registry(spec, status, inputs.registry, now, subject.generation)
    status = status.model_copy(update={"registry": registry.registry, "conditions": registry.conditions})
    if spec.retired:
        return _with_events(_plan_retired(subject, spec, observed, status, now), registry.events)
    resolved = resolved_spec(spec, registry.registry)
    if resolved is None:
        return _plan_unresolved(subject, spec, status, registry.events)
    ctx = context(subject, resolved, observed, status, now, inputs)
    return _with_events(render(ctx, decide(ctx)), registry.events)


def _with_events(decided: Plan, events: tuple[Event, ...]) -> Plan:
    return replace(decided, events=(*events, *decided.events)) if events else decided


def _plan_unresolved(
    subject: Subject, spec: ModelDeploymentSpec, status: ModelDeploymentStatus, events: tuple[Event, ...]
) -> Plan:
    """spec.model.registry has given no version yet: touch nothing, say so (the condition says why)."""
    ref = spec.model.registry
    assert ref is not None
    new = status.model_copy(
        update={
            "phase": status.phase or Phase.PENDING,
            "message": f"waiting for the registry to resolve {selector(ref)}",
            "observed_generation": subject.generation,
        }
    )
    return Plan(status=wire(new), events=events)


def _lenient_status(subject: Subject) -> ModelDeploymentStatus:
    try:
        return subject.parsed_status
    except InvalidManifestError:
        # A status we cannot read (hand-edited, or from a future version) is started afresh
        # rather than crashing the operator; the children are found again by label.
        return ModelDeploymentStatus()


# --- deletion, invalid, retired -------------------------------------------------


def _plan_deletion(subject: Subject, observed: Observed) -> Plan:
    """Route first, then every other child, then the finalizer once none is left.

    Each step waits for the watch events of the last (the deletions leave the cache), with a
    backstop wake-up in case one of them went in a watch gap.
    """
    if FINALIZER not in subject.finalizers:
        return Plan()
    if not observed.children:
        return Plan(finalizer=False)
    routes = tuple(ref for ref in observed.children if ref.kind in ROUTE_KINDS)
    if routes:
        return Plan(delete=routes, requeue_after=CLEANUP_RECHECK_SECONDS)
    return Plan(delete=observed.children, requeue_after=CLEANUP_RECHECK_SECONDS)


def _plan_invalid(
    subject: Subject,
    status: ModelDeploymentStatus,
    problems: list[Problem],
    now: datetime,
) -> Plan:
    message = "; ".join(str(p) for p in problems)[:4000]
    previous = status.condition(ConditionType.INVALID_SPEC)
    conditions = set_condition(
        status.conditions, ConditionType.INVALID_SPEC, True, "InvalidSpec", message, now, subject.generation
    )
    new = status.model_copy(
        update={
            "phase": Phase.INVALID,
            "message": f"invalid spec: {message}",
            "observed_generation": subject.generation,
            "conditions": conditions,
        }
    )
    events: tuple[Event, ...] = ()
    if previous is None or previous.status != "True" or previous.message != message:
        events = (Event("Warning", "InvalidSpec", f"{message}; no serving object was changed"),)
    return Plan(status=wire(new), events=events)


def _plan_retired(
    subject: Subject,
    spec: ModelDeploymentSpec,
    observed: Observed,
    status: ModelDeploymentStatus,
    now: datetime,
) -> Plan:
    routes = tuple(ref for ref in observed.children if ref.kind in ROUTE_KINDS)
    rest = tuple(ref for ref in observed.children if ref.kind not in ROUTE_KINDS)
    deletions = routes or rest
    history = list(status.history)
    events: list[Event] = []
    if status.phase != Phase.RETIRED:
        events.append(Event("Normal", "Retired", "traffic drained; serving objects are being removed"))
        for revision in (status.stable, status.candidate):
            if revision is not None:
                history.append(
                    HistoryEntry(
                        revision=revision.revision,
                        version=revision.version,
                        outcome=Outcome.RETIRED,
                        at=now,
                        reason="Retired",
                        message="spec.retired is true",
                    )
                )
    conditions = set_condition(
        status.conditions, ConditionType.INVALID_SPEC, False, "Valid", "", now, subject.generation
    )
    for type_, reason in (
        (ConditionType.READY, "Retired"),
        (ConditionType.AVAILABLE, "Retired"),
        (ConditionType.PROGRESSING, "Retired"),
    ):
        conditions = set_condition(conditions, type_, False, reason, "retired", now, subject.generation)
    message = "retired: removing serving objects" if deletions else "retired: no serving objects remain"
    new = status.model_copy(
        update={
            "phase": Phase.RETIRED,
            "message": message,
            "observed_generation": subject.generation,
            "router": spec.router,
            "stable": None,
            "candidate": None,
            "traffic": [],
            "history": trim_history(history, spec.revision_history_limit),
            "conditions": conditions,
            "operator_state": None,
        }
    )
    return Plan(delete=deletions, status=wire(new), events=tuple(events))
