"""Analysis: Prometheus queries that judge a candidate, and what their answers mean for a rollout.

The flow, once per analysis interval (the reconciler drives it):

1. :func:`rollout_variables` and :func:`measure` render each metric's query for
   the candidate (and the stable revision, for ``compareToStable``) with values
   escaped so that they stay literals (:mod:`~modeldeploy.analysis.templates`),
   query Prometheus (:class:`PrometheusClient`, which never raises for data or
   network trouble) and :func:`judge` each answer: Successful, Failed or
   Inconclusive (:mod:`~modeldeploy.analysis.thresholds`);
2. :func:`record` folds the measurements into ``status.analysis`` (counters of
   failures in the stage and inconclusive results in a row);
3. :func:`analysis_verdict` / :func:`stage_verdict` say Pass, Hold, Pending,
   Fail or RollbackInconclusive (:mod:`~modeldeploy.analysis.verdicts`).

Steps 2 and 3 are pure; only step 1 does I/O. This package imports requests and
:mod:`modeldeploy.api`, never kopf, kubernetes or the kube/plan/reconcile
layers: the bearer token is read from its Secret by the caller and passed in.
"""

from modeldeploy.analysis.metrics import QueryOutcome
from modeldeploy.analysis.prometheus import PrometheusClient, QueryResult
from modeldeploy.analysis.runner import QueryClient, measure, rollout_variables
from modeldeploy.analysis.templates import TemplateError, render_query, template_variables
from modeldeploy.analysis.thresholds import Measurement, judge
from modeldeploy.analysis.verdicts import (
    Verdict,
    VerdictKind,
    advance,
    analysis_verdict,
    pending_results,
    record,
    stage_verdict,
)

__all__ = [
    "Measurement",
    "PrometheusClient",
    "QueryClient",
    "QueryOutcome",
    "QueryResult",
    "TemplateError",
    "Verdict",
    "VerdictKind",
    "advance",
    "analysis_verdict",
    "judge",
    "measure",
    "pending_results",
    "record",
    "render_query",
    "rollout_variables",
    "stage_verdict",
    "template_variables",
]
