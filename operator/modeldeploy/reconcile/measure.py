"""This round's measurements for one ModelDeployment: warm-up, analysis, both only when due.

The planner is pure, so whatever needs I/O to know (what Prometheus says, how
fast the candidate answers warm-up requests) is measured here first and handed
to it as :class:`~modeldeploy.plan.inputs.Inputs`. What is due is asked of
:mod:`modeldeploy.plan.schedule`, the same answers the planner wakes up by:
analysis runs while the candidate is in an analysed stage it has entered,
immediately on entry and then every ``spec.analysis.interval``; warm-up runs
once the candidate is Ready in the Warmup stage.

Where metrics come from is the admin's choice (:mod:`modeldeploy.providers`):
the provider a ModelDeployment names in ``spec.analysis.provider``, or the
default, and only if it serves the ModelDeployment's namespace; its Secret is
read from the operator's namespace. An inline ``spec.analysis.prometheus`` is
honoured only when the admin allows inline providers, with its Secret read
from the ModelDeployment's own namespace. Every call goes through the admin's
egress rules (:class:`~modeldeploy.analysis.outbound.Outbound`).
None of that I/O runs in the reconcile: each due measurement is a job of the
slow-I/O pool (:class:`~modeldeploy.reconcile.io_pool.IoPool`), named by what it
measures and for which due time. The reconcile that finds it due starts it and
plans without it ("not measured this round"); the job's end triggers another
reconcile, which takes the result and hands it to the planner. Without a pool
(one-shot tools, tests) the jobs run inline.

While a stage goes on measuring, the reconcile that takes a round of analysis
also plans the next one in the pool, at its due time: the pool's timer starts
it then, so with many canaries a round does not wait for its ModelDeployment's
turn in the work queue before its queries even start. Each round so planned
plans its own successor as it ends (the same computation, from its own
result), so the rounds keep their interval while the reconciles that take
them wait behind other work; a reconcile takes every round that has ended,
in order.

A measurement is recorded as taken when its queries ran (``measuredAt``), not
when the reconcile that takes it runs: the next one falls due ``interval``
after that, so the wait for two reconciles does not stretch every interval.
An analysis result that rolls the candidate back wakes its ModelDeployment in
the work queue's urgent lane.

A round that only repeats what status already says (every metric Successful,
the same failure and inconclusive counts) is not written at once: the measurer
keeps it, the planner plans from it (the next round's due time, the verdict),
and ``status.analysis`` keeps its record until that is ANALYSIS_SAVE_EVERY old.
A round that changes a verdict or a count is written as it comes. With a
thousand canaries, a status write per round was a write per canary every
interval, and its watch event one more reconcile. After a restart the kept
rounds are gone and the next round falls due at once: safe, one query early.

Such a round, planned in the pool, does not even wake its ModelDeployment
(the pool's ``quiet``): its reconcile would find nothing to write and nothing
to do. It waits in the pool and is taken, with the rounds before it, by the
next reconcile: the one a round that changes something wakes (a failure, a
count, status's record grown ANALYSIS_SAVE_EVERY old), the stage's own clock,
or any other change. What "repeats status" is judged against is the record
the last reconcile left in status (``_written``), so status never grows older
than ANALYSIS_SAVE_EVERY and an interval while rounds pass.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from modeldeploy.analysis import (
    Measurement,
    PrometheusClient,
    QueryResult,
    analysis_verdict,
    measure,
    record,
    rollout_variables,
)
from modeldeploy.analysis.metrics import QueryOutcome
from modeldeploy.analysis.outbound import Outbound
from modeldeploy.analysis.warmup import run_warmup, service_url
from modeldeploy.analysis.webhook import call_webhook
from modeldeploy.api import (
    Analysis,
    CandidateRevision,
    HistoryEntry,
    InvalidManifestError,
    MeasurementPhase,
    MetricQuery,
    MetricResult,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Outcome,
    RegistryRef,
    RegistryStatus,
    RetrainOutcome,
    StableRevision,
    Stage,
    VerdictKind,
    WebhookOutcome,
    parse_duration,
)
from modeldeploy.kube.client import ApiError, KubeClient
from modeldeploy.kube.kinds import CONFIG_MAP, MODEL_DEPLOYMENT, SECRET
from modeldeploy.plan.inputs import Inputs, RegistryRead, Subject, WarmupOutcome
from modeldeploy.plan.positions import Position, analysed, position_seconds
from modeldeploy.plan.registry import same_reference, unreported
from modeldeploy.plan.schedule import (
    ANALYSIS_SAVE_EVERY,
    analysis_due,
    fallback_check_due,
    monitoring_due,
    next_measurement_at,
)
from modeldeploy.plan.workloads import SERVICE_PORT, candidate_service_name
from modeldeploy.providers import OperatorConfig, RegistryProvider
from modeldeploy.reconcile.io_pool import IoPool, Plan
from modeldeploy.registry.mlflow import MlflowRegistry, RegistryError, Report, Resolved

logger = logging.getLogger("modeldeploy.measure")

T = TypeVar("T")


MAX_WEBHOOK_STARTS = 3
"""Webhook calls that may start and never finish (the operator restarted) before the webhook is given up."""


@dataclass(frozen=True)
class NoPrometheus:
    """Stands in when no provider may be used: every query is Inconclusive with ``reason``, never a pass."""

    reason: str = "no metric provider: set spec.analysis.provider or ask the admin for a default one"

    def query(self, promql: str) -> QueryResult:
        return QueryResult(query=promql, outcome=QueryOutcome.ERROR, error=self.reason)


@dataclass
class _RegistryPolls:
    """One ModelDeployment's registry schedule, in memory: polls need no status write at rest."""

    key: tuple[str, ...]
    interval: float
    job: str | None = None
    work: Callable[[], RegistryRead] | None = None
    count: int = 0
    last: float | None = None
    """time.monotonic() when the last job finished."""
    write_failed: bool = False


Timed = tuple[datetime, list[Measurement]]
"""Measurements and when their queries ran (whole seconds, as status keeps times)."""

ROLLS_BACK = (VerdictKind.FAIL, VerdictKind.ROLLBACK_INCONCLUSIVE)

PLANNED_START_MARGIN = 0.05
"""A planned round starts this long after its due instant: never in the second before it."""


def _stage_of(subject: Subject, candidate: CandidateRevision) -> str:
    """The stage a round of analysis belongs to, by name: its results count in that stage only."""
    started = candidate.stage_started_at.isoformat() if candidate.stage_started_at else "-"
    return (
        f"{candidate.revision} {candidate.stage.value} {candidate.step} since {started} "
        f"generation {subject.generation}"
    )


def worth_saving(saved: Sequence[MetricResult], measured: Sequence[MetricResult], now: datetime) -> bool:
    """Whether ``measured`` must be written to status now, rather than kept until later.

    Yes unless every metric passed, the metrics and their failure and
    inconclusive counts are those status holds, and status's oldest record is
    younger than ANALYSIS_SAVE_EVERY.
    """
    if [r.metric for r in saved] != [r.metric for r in measured]:
        return True
    for old, new in zip(saved, measured, strict=True):
        if new.phase != MeasurementPhase.SUCCESSFUL or old.phase != new.phase:
            return True
        if (old.failures, old.inconclusive) != (new.failures, new.inconclusive):
            return True
        if old.measured_at is None or now - old.measured_at >= ANALYSIS_SAVE_EVERY:
            return True
    return False


def _analysis_job(subject: Subject, candidate: CandidateRevision, due: datetime | None) -> str:
    """One round of the candidate's analysis, by name: its stage (revision, stage, step, stage start,
    and the spec generation its queries come from: a round planned before an edit is not taken after
    it) and its due time."""
    return f"analysis {_stage_of(subject, candidate)} due {due.isoformat() if due else '-'}"


def _rolls_back(analysis: Analysis, previous: Sequence[MetricResult]) -> Callable[[Timed], bool]:
    """Whether a round measured after ``previous`` rolls the candidate back (its end then wakes urgently)."""

    def rolls_back(timed: Timed) -> bool:
        at, measurements = timed
        return analysis_verdict(analysis, record(previous, measurements, at)).kind in ROLLS_BACK

    return rolls_back


def _wall_clock() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _exact_wall_clock() -> datetime:
    return datetime.now(UTC)


REGISTRY_TAG_PREFIX = "modeldeploy."
MAX_TAG_MESSAGE = 500


@dataclass(frozen=True)
class Measurer:
    client: KubeClient
    config: OperatorConfig
    outbound: Outbound
    service_url_template: str
    operator_namespace: str | None = None
    pool: IoPool | None = None
    clock: Callable[[], datetime] = _wall_clock
    """When a pool's measurement job runs (inline ones are taken at the reconcile's ``now``)."""
    exact_clock: Callable[[], datetime] = _exact_wall_clock
    """The instant a planned round's delay is counted from."""
    _polls: dict[Hashable, _RegistryPolls] = field(default_factory=dict, compare=False, hash=False)
    _unsaved: dict[Hashable, tuple[str, tuple[MetricResult, ...]]] = field(
        default_factory=dict, compare=False, hash=False
    )
    """Per ModelDeployment, the stage and the rounds of analysis newer than its status (not yet written)."""
    _written: dict[Hashable, tuple[str, tuple[MetricResult, ...]]] = field(
        default_factory=dict, compare=False, hash=False
    )
    """Per ModelDeployment, the stage and the record of analysis its last reconcile left in status:
    what a planned round is quiet against."""

    def forget(self, subject_key: Hashable) -> None:
        """Drop what is kept for a ModelDeployment that is gone."""
        self._unsaved.pop(subject_key, None)
        self._written.pop(subject_key, None)
        if self.pool is not None:
            self.pool.forget(subject_key)

    def pending(self, subject: Subject) -> bool:
        """Whether a measurement of ``subject`` is under way (its end triggers a reconcile)."""
        return self.pool is not None and self.pool.pending(_owner(subject))

    def _io(
        self,
        subject: Subject,
        job: str,
        work: Callable[[], T],
        urgent: bool = False,
        wake_urgently: Callable[[T], bool] | None = None,
    ) -> T | None:
        """The result of ``job``: at once without a pool; with one, once the pool has finished it."""
        if self.pool is None:
            return work()
        return self.pool.take(_owner(subject), job, work, urgent, wake_urgently)

    def _timed(self, now: datetime, work: Callable[[], list[Measurement]]) -> Callable[[], Timed]:
        """``work``, with the time its queries start: the reconcile's ``now`` when it runs inline,
        else the clock's (never later than the ``now`` of the reconcile that takes the result)."""
        if self.pool is None:
            return lambda: (now, work())
        return lambda: (self.clock(), work())

    def inputs(self, subject: Subject, now: datetime) -> Inputs:
        try:
            spec = subject.parsed_spec
            status = subject.parsed_status
        except InvalidManifestError:
            return Inputs()
        if subject.deleting:
            return Inputs()
        registry = self._registry(subject, spec, status)
        if spec.retired:
            return Inputs(registry=registry)
        fallback_failing = self._fallback(subject, spec, status, now)
        rollout = self._rollout(subject, spec, status, now)
        return replace(
            rollout,
            fallback_failing=fallback_failing,
            monitoring=self._monitoring(subject, spec, status, now),
            webhook=self._webhook(subject, spec, status),
            registry=registry,
        )

    # --- the model registry ---------------------------------------------------------

    def registry_wake(self, subject: Subject) -> float | None:
        """Seconds until the next registry poll of ``subject`` is due (None: none scheduled)."""
        polls = self._polls.get(_owner(subject))
        if polls is None or polls.job is not None or polls.last is None or polls.key[2] == "":
            return None
        return max(0.0, polls.last + polls.interval - time.monotonic())

    def _registry(
        self, subject: Subject, spec: ModelDeploymentSpec, status: ModelDeploymentStatus
    ) -> RegistryRead | None:
        """The registry's answer for spec.model.registry when a poll or a write-back is due.

        An alias is read every ``pollInterval`` of its provider; a pinned version
        once (per operator start) until it is known. History entries not yet
        written back are written at once, and after a failed write at the next poll.
        """
        ref = spec.model.registry
        owner = _owner(subject)
        if ref is None:
            self._polls.pop(owner, None)
            return None
        provider = self.config.registry(ref.provider, subject.namespace)
        if provider is None:
            return RegistryRead(
                reason="ProviderRefused",
                error=(
                    f"spec.model.registry.provider: {ref.provider!r} is not a registry provider offered to "
                    f"namespace {subject.namespace}; ask the cluster admin to add it to registryProviders "
                    "for this namespace, or name one that is"
                ),
            )
        key = (ref.provider, ref.model, ref.alias or "", ref.version or "")
        polls = self._polls.get(owner)
        if polls is None or polls.key != key:
            polls = _RegistryPolls(key, provider.poll_seconds)
            self._polls[owner] = polls
        if polls.job is None:
            known = status.registry if same_reference(ref, status.registry) else None
            now = time.monotonic()
            waited = polls.last is None or now >= polls.last + polls.interval
            read = waited and (
                polls.last is None or ref.alias is not None or known is None or not known.version
            )
            pending = unreported(known, status.history) if provider.write_back and known is not None else []
            write = bool(pending) and (not polls.write_failed or waited)
            if not read and not write:
                return None
            polls.count += 1
            polls.job = f"registry {'/'.join(key)} #{polls.count}"
            polls.work = self._registry_job(subject, provider, ref, known if read else None, read, pending)
        assert polls.work is not None
        result = self._io(subject, polls.job, polls.work)
        if result is None:
            return None
        polls.job, polls.work = None, None
        polls.last = time.monotonic()
        polls.write_failed = result.write_error is not None
        return result

    def _registry_job(
        self,
        subject: Subject,
        provider: RegistryProvider,
        ref: RegistryRef,
        known: RegistryStatus | None,
        read: bool,
        pending: Sequence[HistoryEntry],
    ) -> Callable[[], RegistryRead]:
        def work() -> RegistryRead:
            registry = self._mlflow(provider, subject.namespace)
            reported_until, write_error = None, None
            reports = [self._report(subject, entry) for entry in pending if entry.version.isdigit()]
            if pending:
                try:
                    registry.write_back(ref.model, reports, provider.promotion_alias or None)
                    reported_until = max(entry.at for entry in pending)
                except RegistryError as error:
                    write_error = str(error)
            if not read:
                return RegistryRead(reason="", reported_until=reported_until, write_error=write_error)
            previous = (
                Resolved(known.version, known.uri, known.card)
                if known is not None and known.version and known.card is not None
                else None
            )
            try:
                found = registry.resolve(ref.model, version=ref.version, alias=ref.alias, known=previous)
            except RegistryError as error:
                return RegistryRead(
                    reason=error.reason,
                    error=str(error),
                    reported_until=reported_until,
                    write_error=write_error,
                )
            return RegistryRead(
                version=found.version,
                uri=found.uri,
                card=found.card,
                reported_until=reported_until,
                write_error=write_error,
            )

        return work

    def _report(self, subject: Subject, entry: HistoryEntry) -> Report:
        # Written in this order: the outcome last, so whoever sees it sees the whole record.
        tags = {
            "reason": entry.reason,
            "message": (entry.message or "")[:MAX_TAG_MESSAGE],
            "cluster": self.config.cluster_name,
            "namespace": subject.namespace,
            "name": subject.name,
            "revision": entry.revision,
            "at": entry.at.isoformat(),
            "outcome": entry.outcome.value,
        }
        return Report(
            version=entry.version,
            tags={REGISTRY_TAG_PREFIX + key: value for key, value in tags.items() if value},
            promoted=entry.outcome == Outcome.PROMOTED,
        )

    def _mlflow(self, provider: RegistryProvider, namespace: str) -> MlflowRegistry:
        token = None
        if provider.bearer_token_secret_ref is not None and self.operator_namespace:
            ref = provider.bearer_token_secret_ref
            token = self._secret(self.operator_namespace, ref.name, ref.key)
        return MlflowRegistry(
            provider.address,
            self.outbound,
            token=token,
            headers=provider.headers_for(namespace),
            verify=not provider.tls.insecure_skip_verify,
            ca_file=provider.tls.ca_file,
            timeout=provider.timeout_seconds,
        )

    def _monitoring(
        self, subject: Subject, spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime
    ) -> tuple[MetricResult, ...] | None:
        """The monitoring metrics on the stable revision, when due: counted like fallback triggers."""
        monitoring, stable = spec.monitoring, status.stable
        if monitoring is None or stable is None:
            return None
        if not monitoring_due(spec, status.monitoring, now):
            return None
        previous = [r for r in status.monitoring if r.metric in {m.name for m in monitoring.metrics}]
        due = next_measurement_at(previous, monitoring.interval)
        timed = self._io(
            subject,
            f"monitoring {stable.revision} due {due.isoformat() if due else '-'} ({len(previous)} known)",
            self._timed(
                now,
                lambda: self._measure(subject, spec, monitoring.metrics, stable, stable, monitoring.interval),
            ),
        )
        if timed is None:
            return None
        at, measurements = timed
        return tuple(record(previous, measurements, min(at, now), consecutive_failures=True))

    def _webhook(
        self, subject: Subject, spec: ModelDeploymentSpec, status: ModelDeploymentStatus
    ) -> WebhookOutcome | None:
        """Call the retrain webhook once for a retraining the planner started (decided first, then called).

        The retraining is recorded before the call, so an operator that dies
        during the call calls again after its restart. That must not repeat
        forever (an answer that kills the operator would crash-loop it), so each
        start is counted in ``status.retrain.webhookStarts`` first, and after
        :data:`MAX_WEBHOOK_STARTS` starts that never finished the webhook is
        given up as failed instead of being called again.
        """
        retrain = status.retrain
        hook = spec.monitoring.retrain.webhook if spec.monitoring and spec.monitoring.retrain else None
        if (
            retrain is None
            or hook is None
            or retrain.webhook is None
            or retrain.outcome not in (RetrainOutcome.PENDING, RetrainOutcome.RUNNING)
            or retrain.webhook_called_at is not None
        ):
            return None
        job = f"retrain webhook {retrain.count}"
        if self.pool is not None and self.pool.holds(_owner(subject), job):
            # Started by an earlier reconcile and not lost: its result, once there.
            answer = self.pool.take(_owner(subject), job, lambda: None)
            return None if answer is None else WebhookOutcome(answer.ok, answer.message)
        started = retrain.webhook_starts
        if started >= MAX_WEBHOOK_STARTS:
            return WebhookOutcome(
                False,
                f"webhook failed: {started} calls started and none finished (the operator restarted "
                "during each); not called again",
            )
        try:
            self.client.merge_patch(
                MODEL_DEPLOYMENT,
                subject.namespace,
                subject.name,
                {"status": {"retrain": {"webhookStarts": started + 1}}},
                subresource="status",
            )
        except ApiError as error:
            logger.warning(
                "cannot record the webhook call for %s/%s: %s", subject.namespace, subject.name, error
            )
            return None  # not recorded, so not made: the next reconcile tries again
        stable = status.stable
        body = {
            "namespace": subject.namespace,
            "name": subject.name,
            "model": spec.model.name,
            "version": stable.version if stable else spec.model.version,
            "uri": spec.model.uri or (status.registry.uri if status.registry else None),
            "revision": stable.revision if stable else None,
            "metric": retrain.metric,
            "value": retrain.value,
            "retrain": retrain.count,
        }
        answer = self._io(
            subject,
            job,
            lambda: call_webhook(hook.url, body, parse_duration(hook.timeout), hook.retries, self.outbound),
        )
        return None if answer is None else WebhookOutcome(answer.ok, answer.message)

    def _rollout(
        self, subject: Subject, spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime
    ) -> Inputs:
        candidate = status.candidate
        if candidate is None or candidate.stage_started_at is None:
            return Inputs()
        position = Position(candidate.stage, candidate.step)
        if position.stage == Stage.WARMUP:
            revision = candidate.revision
            warmup = self._io(
                subject,
                f"warm-up {revision} since {candidate.stage_started_at.isoformat()}",
                lambda: self._warmup(subject, spec, revision),
            )
            return Inputs(warmup=warmup)
        if analysed(spec, position):
            return self._analysis(subject, spec, status, now)
        return Inputs()

    def _analysis(
        self, subject: Subject, spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime
    ) -> Inputs:
        analysis = spec.analysis
        candidate = status.candidate
        assert analysis is not None and candidate is not None
        owner, stage = _owner(subject), _stage_of(subject, candidate)
        saved = list(status.analysis)
        results = self._newest(owner, stage, saved)
        measured = tuple(results) if results is not saved else None
        taken = False
        while analysis_due(spec, results, now):
            # Every round that has ended, in order: the pool may have run the next rounds by
            # itself while this reconcile waited for its turn.
            timed = self._io(
                subject,
                _analysis_job(subject, candidate, next_measurement_at(results, analysis.interval)),
                self._analysis_work(subject, spec, status, now),
                wake_urgently=_rolls_back(analysis, results),
            )
            if timed is None:
                break
            at, measurements = timed
            results = record(results, measurements, min(at, now))
            measured, taken = tuple(results), True
            if self.pool is None:
                break  # measured inline, now: the next round is an interval away
        due = next_measurement_at(results, analysis.interval)
        if taken:
            self._plan_analysis(subject, spec, status, results)
        unsaved = measured is not None and not worth_saving(saved, measured, now)
        if unsaved and measured is not None:
            self._unsaved[owner] = (stage, measured)
        else:
            self._unsaved.pop(owner, None)
        self._written[owner] = (stage, measured if measured is not None and not unsaved else tuple(saved))
        planned = None
        if self.pool is not None and due is not None:
            job = _analysis_job(subject, candidate, due)
            if self.pool.planned(owner) == job or self.pool.holds(owner, job):
                planned = due
        verdict = analysis_verdict(analysis, results)
        if unsaved:
            # Same verdict (every metric passed, the same counts): its message is status's record's,
            # so that status.message, which carries it, is not rewritten for a value either.
            recorded = analysis_verdict(analysis, saved)
            verdict = recorded if recorded.kind == verdict.kind else verdict
        return Inputs(analysis=measured, verdict=verdict, analysis_planned=planned, analysis_unsaved=unsaved)

    def _newest(self, owner: Hashable, stage: str, saved: list[MetricResult]) -> list[MetricResult]:
        """The rounds kept for ``owner`` when they are of this stage and newer than status's; else
        status's (``saved`` itself)."""
        kept = self._unsaved.get(owner)
        if kept is None:
            return saved
        kept_stage, results = kept
        times = [r.measured_at for r in results]
        saved_times = [r.measured_at for r in saved]
        newer = (
            kept_stage == stage
            and [r.metric for r in results] == [r.metric for r in saved]
            and all(
                new is not None and (old is None or new >= old)
                for new, old in zip(times, saved_times, strict=True)
            )
        )
        if not newer:
            del self._unsaved[owner]
            return saved
        return list(results)

    def _analysis_work(
        self, subject: Subject, spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime
    ) -> Callable[[], Timed]:
        analysis, candidate = spec.analysis, status.candidate
        assert analysis is not None and candidate is not None
        return self._timed(
            now,
            lambda: self._measure(
                subject, spec, analysis.metrics, candidate, status.stable, analysis.interval
            ),
        )

    def _plan_analysis(
        self,
        subject: Subject,
        spec: ModelDeploymentSpec,
        status: ModelDeploymentStatus,
        results: Sequence[MetricResult],
    ) -> None:
        """Have the pool start the candidate's next round of analysis by itself, when it falls due.

        The reconcile that would start it waits in the work queue behind every
        other ModelDeployment's (seconds, with a thousand canaries); started by
        the pool's timer, each round runs on time and its result is what wakes
        the reconcile. Each round planned so also plans the one after it as it
        ends, so the rounds keep their interval even while the reconciles that
        take them wait. The job is the one a reconcile would ask for (same name),
        so whichever comes first starts it, once; a round the pool already plans
        or holds is left to it.
        """
        if self.pool is None:
            return
        plan = self._next_round(subject, spec, status, results)
        if plan is None:
            return
        owner = _owner(subject)
        if self.pool.planned(owner) == plan.job or self.pool.holds(owner, plan.job):
            return
        self.pool.plan(owner, plan.job, plan.work, plan.delay, plan.wake_urgently, plan.then, plan.quiet)

    def _next_round(
        self,
        subject: Subject,
        spec: ModelDeploymentSpec,
        status: ModelDeploymentStatus,
        results: Sequence[MetricResult],
    ) -> Plan | None:
        """The round of analysis due after ``results``, for the pool's timer, and what follows it.

        None after a result that rolls back, and when the stage is to end first:
        a passing stage whose clock runs out before the next round.
        """
        analysis, candidate = spec.analysis, status.candidate
        if analysis is None or candidate is None or candidate.stage_started_at is None:
            return None
        due = next_measurement_at(results, analysis.interval)
        verdict = analysis_verdict(analysis, results).kind
        if due is None or verdict in ROLLS_BACK:
            return None
        duration = position_seconds(spec, Position(candidate.stage, candidate.step))
        ends = None if duration is None else candidate.stage_started_at + timedelta(seconds=duration)
        if verdict == VerdictKind.PASS and ends is not None and due >= ends:
            return None

        def then(timed: Timed) -> Plan | None:
            at, measurements = timed
            return self._next_round(subject, spec, status, record(results, measurements, at))

        owner, stage = _owner(subject), _stage_of(subject, candidate)

        def quiet(timed: Timed) -> bool:
            """The round repeats the record the last reconcile left in status: nothing to write or do."""
            at, measurements = timed
            written = self._written.get(owner)
            return (
                written is not None
                and written[0] == stage
                and not worth_saving(written[1], record(results, measurements, at), at)
            )

        return Plan(
            _analysis_job(subject, candidate, due),
            self._analysis_work(subject, spec, status, due),
            (due - self.exact_clock()).total_seconds() + PLANNED_START_MARGIN,
            wake_urgently=_rolls_back(analysis, results),
            then=then,
            quiet=quiet,
        )

    def _fallback(
        self, subject: Subject, spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime
    ) -> bool | None:
        """The fallback trigger metrics against the stable revision, when a check is due: failing or not."""
        fallback = spec.fallback
        stable = status.stable
        metrics = fallback.trigger.metrics if fallback else None
        if fallback is None or not metrics or stable is None:
            return None
        if not fallback_check_due(spec, status.operator_state, now):
            return None
        counters = status.operator_state.fallback if status.operator_state else None
        checked = (counters.checked_at if counters else None) or "-"
        measurements = self._io(
            subject,
            f"fallback trigger {stable.revision} after {checked}",
            lambda: self._measure(subject, spec, metrics, stable, stable, fallback.trigger.interval),
            urgent=True,
        )
        if measurements is None:
            return None
        # Inconclusive is never a breach: only a measured failure counts.
        return any(m.phase == MeasurementPhase.FAILED for m in measurements)

    def _measure(
        self,
        subject: Subject,
        spec: ModelDeploymentSpec,
        metrics: Sequence[MetricQuery],
        revision: StableRevision | CandidateRevision,
        stable: StableRevision | None,
        interval: str,
    ) -> list[Measurement]:
        """One round of ``metrics`` for ``revision`` (and, for compareToStable, for ``stable``)."""
        variables, stable_variables = rollout_variables(
            namespace=subject.namespace,
            name=subject.name,
            candidate_revision=revision.revision,
            candidate_version=revision.version,
            stable_revision=stable.revision if stable else None,
            stable_version=stable.version if stable else None,
            interval=interval,
        )
        prometheus = self._prometheus(subject, spec)
        try:
            return measure(metrics, variables, stable_variables, prometheus)
        finally:
            if isinstance(prometheus, PrometheusClient):
                prometheus.close()

    def _prometheus(self, subject: Subject, spec: ModelDeploymentSpec) -> PrometheusClient | NoPrometheus:
        analysis = spec.analysis
        namespace = subject.namespace
        if analysis is not None and analysis.prometheus is not None:
            source = analysis.prometheus
            if not self.config.inline_providers:
                return NoPrometheus(
                    "spec.analysis.prometheus is refused: the admin allows no inline address; "
                    "name an admin-configured provider in spec.analysis.provider"
                )
            token = None
            if source.bearer_token_secret_ref is not None:
                ref = source.bearer_token_secret_ref
                token = self._secret(namespace, ref.name, ref.key)
            return PrometheusClient(
                source.address, token, outbound=self.outbound, verify=not source.insecure_skip_verify
            )
        name = analysis.provider if analysis is not None else None
        provider = self.config.provider(name, namespace)
        if provider is None:
            if name is not None:
                return NoPrometheus(
                    f"metric provider {name!r} is not offered to namespace {namespace}: "
                    "ask the cluster admin, or remove spec.analysis.provider to use the default"
                )
            return NoPrometheus()
        token = None
        if provider.bearer_token_secret_ref is not None:
            if not self.operator_namespace:
                return NoPrometheus(f"metric provider {provider.name!r}: the operator's namespace is unknown")
            own = provider.bearer_token_secret_ref
            token = self._secret(self.operator_namespace, own.name, own.key)
        return PrometheusClient(
            provider.address,
            token,
            outbound=self.outbound,
            verify=not provider.tls.insecure_skip_verify,
            ca_file=provider.tls.ca_file,
            timeout=provider.timeout_seconds,
            headers=provider.headers_for(namespace),
        )

    def _secret(self, namespace: str, name: str, key: str) -> str | None:
        try:
            secret = self.client.get(SECRET, namespace, name)
        except (ApiError, ValueError) as error:
            logger.warning("cannot read Secret %s/%s: %s", namespace, name, error)
            return None
        data = (secret or {}).get("data") or {}
        if key not in data:
            return None
        return base64.b64decode(data[key]).decode().strip()

    def _warmup(self, subject: Subject, spec: ModelDeploymentSpec, revision: str) -> WarmupOutcome:
        warmup = spec.strategy.warmup if spec.strategy else None
        assert warmup is not None
        payloads: list[bytes] = []
        if warmup.payload_config_map:
            config_map = self.client.get(CONFIG_MAP, subject.namespace, warmup.payload_config_map)
            if config_map is None:
                return WarmupOutcome(
                    False, f"warm-up payload ConfigMap {warmup.payload_config_map} not found"
                )
            data = config_map.get("data") or {}
            payloads = [data[key].encode() for key in sorted(data)]
        url = service_url(
            self.service_url_template, candidate_service_name(subject.name), subject.namespace, SERVICE_PORT
        )
        result = run_warmup(url, warmup, payloads, revision, self.outbound)
        return WarmupOutcome(result.passed, result.message)


def _owner(subject: Subject) -> Hashable:
    return (subject.namespace, subject.name)
