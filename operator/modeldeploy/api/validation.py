"""Checks the operator makes that admission cannot, and the one entry point ``lint`` uses.

CEL in the CRD catches most mistakes at ``kubectl apply``. A few it cannot
express, or cannot afford within the API server's cost budget:

- **Query templates.** A query may only use the variables the analysis layer
  fills in; ``{{revison}}`` would otherwise reach Prometheus verbatim and every
  measurement would be inconclusive, which holds the rollout for no visible
  reason.
- **Open objects.** ``runtime.podTemplate`` and ``monitoring.retrain.jobTemplate``
  are passed through untyped; here we check their outline (only ``metadata``
  and ``spec`` at the top, no labels under the operator's own prefix, a Job
  template with a pod template).

The operator runs :func:`check_spec` after parsing; a non-empty result puts the
object in phase ``Invalid`` with condition ``InvalidSpec`` and touches no
serving object. :func:`lint_manifest` runs everything (structure, CEL twins,
these checks, the lock when an old version is given) for offline use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from modeldeploy.api.analysis import MetricQuery
from modeldeploy.api.manifest import parse_manifest
from modeldeploy.api.problems import InvalidManifestError, Problem
from modeldeploy.api.rules import transition_rules
from modeldeploy.api.spec import ModelDeploymentSpec

TEMPLATE_VARIABLES = frozenset(
    {"namespace", "name", "revision", "version", "role", "stableRevision", "interval"}
)
"""Variables a query may use, as ``{{name}}``; filled in (escaped) by the analysis layer."""

RESERVED_LABEL_PREFIX = "modeldeploy.io/"
"""Labels the operator sets on pods and Jobs; a template must not set them itself."""

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_TEMPLATE_KEYS = frozenset({"metadata", "spec"})


def check_spec(spec: ModelDeploymentSpec) -> list[Problem]:
    """Problems in a parsed spec that CEL does not catch; empty when the spec is usable."""
    problems = [problem for path, metric in _metrics(spec) for problem in _query_problems(path, metric.query)]
    if spec.runtime.pod_template is not None:
        problems += _template_problems("spec.runtime.podTemplate", spec.runtime.pod_template)
    retrain = spec.monitoring.retrain if spec.monitoring is not None else None
    if retrain is not None and retrain.job_template is not None:
        path = "spec.monitoring.retrain.jobTemplate"
        problems += _template_problems(path, retrain.job_template)
        job_spec = retrain.job_template.get("spec")
        if not isinstance(job_spec, Mapping) or not isinstance(job_spec.get("template"), Mapping):
            problems.append(Problem(f"{path}.spec.template", "Required value: a Job needs a pod template"))
        else:
            problems += _template_problems(f"{path}.spec.template", job_spec["template"])
    return problems


def check_update(old: ModelDeploymentSpec, new: ModelDeploymentSpec) -> list[Problem]:
    """The Python twin of the CEL transition rules (the lock): problems with changing ``old`` into ``new``."""
    return [
        Problem("spec", f"Invalid value: {rule.message}")
        for rule, allowed in transition_rules(type(new))
        if not allowed(new, old)
    ]


def lint_manifest(obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[Problem]:
    """Every problem the API server or the operator would find in ``obj`` (an update of ``old`` if given)."""
    try:
        manifest = parse_manifest(obj)
    except InvalidManifestError as error:
        return list(error.problems)
    problems = check_spec(manifest.spec)
    if old is not None:
        try:
            previous = parse_manifest(old)
        except InvalidManifestError:
            return problems
        problems += check_update(previous.spec, manifest.spec)
    return problems


def _metrics(spec: ModelDeploymentSpec) -> Iterator[tuple[str, MetricQuery]]:
    if spec.analysis is not None:
        for index, metric in enumerate(spec.analysis.metrics):
            yield f"spec.analysis.metrics[{index}]", metric
    if spec.fallback is not None and spec.fallback.trigger.metrics is not None:
        for index, threshold in enumerate(spec.fallback.trigger.metrics):
            yield f"spec.fallback.trigger.metrics[{index}]", threshold
    if spec.monitoring is not None:
        for index, threshold in enumerate(spec.monitoring.metrics):
            yield f"spec.monitoring.metrics[{index}]", threshold


def _query_problems(metric_path: str, query: str) -> list[Problem]:
    path = f"{metric_path}.query"
    problems = []
    for name in _PLACEHOLDER.findall(query):
        if name not in TEMPLATE_VARIABLES:
            known = ", ".join("{{%s}}" % v for v in sorted(TEMPLATE_VARIABLES))  # noqa: UP031
            problems.append(Problem(path, f"unknown template variable {{{{{name}}}}}: use one of {known}"))
    leftover = _PLACEHOLDER.sub("", query)
    if "{{" in leftover or "}}" in leftover:
        problems.append(Problem(path, "unbalanced {{ or }}: write variables as {{revision}}"))
    return problems


def _template_problems(path: str, template: Mapping[str, Any]) -> list[Problem]:
    problems = [
        Problem(path, f'unknown field "{path}.{key}": a template holds only metadata and spec')
        for key in template
        if key not in _TEMPLATE_KEYS
    ]
    metadata = template.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    if isinstance(labels, Mapping):
        problems += [
            Problem(
                f"{path}.metadata.labels",
                f"{key}: the {RESERVED_LABEL_PREFIX} prefix is reserved for the operator",
            )
            for key in labels
            if str(key).startswith(RESERVED_LABEL_PREFIX)
        ]
    return problems
