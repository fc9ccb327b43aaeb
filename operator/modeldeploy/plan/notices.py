"""Notices: the facts of a transition that notification targets and the CloudEvents sink receive.

Steps of deciding add a :class:`~modeldeploy.plan.outputs.Notice` where they
make a transition (``Record.notify``, monitoring's draft); :func:`settle`
then, once per decision, fills in what served before, drops notices whose key
``status.operatorState.notified`` already holds, writes the new keys there and
names the subscribed targets. So a notice exists only in the reconcile whose
status write records it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from modeldeploy.api import (
    NOTIFIED_KEEP,
    ModelDeploymentSpec,
    OperatorState,
    StableRevision,
)
from modeldeploy.api.status import MetricResult
from modeldeploy.plan.outputs import Notice


def metric_facts(metrics: Sequence[Any], results: Sequence[MetricResult], name: str | None) -> dict[str, Any]:
    """``metric``, ``value`` and ``threshold`` of the metric ``name`` for a notice (empty when None).

    ``metrics`` are the spec's metric definitions (``max``/``min``, maybe
    ``compareToStable``), ``results`` the latest measurements.
    """
    if name is None:
        return {}
    result = next((r for r in results if r.metric == name), None)
    definition = next((m for m in metrics if m.name == name), None)
    bounds: list[str] = []
    if definition is not None:
        if getattr(definition, "max", None) is not None:
            bounds.append(f"max {definition.max:g}")
        if getattr(definition, "min", None) is not None:
            bounds.append(f"min {definition.min:g}")
        compare = getattr(definition, "compare_to_stable", None)
        if compare is not None and compare.max_ratio is not None:
            bounds.append(f"at most {compare.max_ratio:g} x stable")
        if compare is not None and compare.max_diff is not None:
            bounds.append(f"at most stable + {compare.max_diff:g}")
    return {
        "metric": name,
        "value": result.value if result is not None else None,
        "threshold": ", ".join(bounds) or None,
    }


def settle(
    notices: Sequence[Notice],
    spec: ModelDeploymentSpec,
    stable_before: StableRevision | None,
    state: OperatorState,
    offered: frozenset[str] | None,
    sink: bool,
) -> tuple[tuple[Notice, ...], OperatorState]:
    """The notices still to send (keys not yet in ``state.notified``) and the state recording them.

    Each names the subscribed targets that want its event and that the admin
    offers this namespace (``offered``; refused ones are reported by
    :func:`refused_targets` as a condition instead). A notice nobody takes (no
    target wants it and no CloudEvents ``sink`` listens) is not made at all, so
    nothing is written for it.
    """
    sent = set(state.notified)
    fresh: list[Notice] = []
    for notice in notices:
        targets = tuple(
            s.target
            for s in spec.notifications
            if notice.event in s.events and offered and s.target in offered
        )
        if notice.key in sent or not (targets or sink):
            continue
        sent.add(notice.key)
        notice = replace(notice, targets=targets)
        if stable_before is not None and notice.stable_revision is None:
            notice = replace(
                notice, stable_revision=stable_before.revision, stable_version=stable_before.version
            )
        fresh.append(notice)
    if not fresh:
        return (), state
    notified = [*state.notified, *(n.key for n in fresh)][-NOTIFIED_KEEP:]
    return tuple(fresh), state.model_copy(update={"notified": notified})


def refused_targets(spec: ModelDeploymentSpec, offered: frozenset[str] | None) -> list[str]:
    """The subscribed targets that do not exist or are not offered to this namespace, in spec order."""
    return [s.target for s in spec.notifications if offered is None or s.target not in offered]
