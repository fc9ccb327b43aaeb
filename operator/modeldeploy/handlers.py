"""The kopf wiring, and nothing else: watch, cache, trigger.

kopf gives us watch streams, reconnection, peering for HA and a liveness
endpoint. We use it level-triggered: every watch event (of a ModelDeployment
or of one of its children) only updates the cache and asks the work queue to
reconcile the ModelDeployment concerned. No change-detection handlers are
registered, not even for deletion, so kopf never writes onto user objects: no
progress, no diff base, no finalizer (the planner adds and removes
``modeldeploy.io/cleanup`` itself, which spares every new ModelDeployment the
status patch kopf's diff base would cost, and a deletion the retries of a
handler, each an ERROR line and a status patch). The settings below still point
kopf's records into ``status`` and rename its finalizer, so that nothing
``kopf.zalando.org/*`` can ever appear.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import urlsplit

from prometheus_client import Counter

from modeldeploy.kube.access import without_kubernetes_models

with without_kubernetes_models():  # the first import of kopf: see there
    import kopf
    from kopf._core.reactor import observation as kopf_observation

from modeldeploy.analysis.outbound import IN_CLUSTER_DEFAULT, EgressPolicy, Outbound
from modeldeploy.api import GROUP, PLURAL, VERSION
from modeldeploy.kube.client import Kind, KubeClient
from modeldeploy.kube.kinds import CHILD_KINDS, MODEL_DEPLOYMENT, READ_KINDS
from modeldeploy.kube.observe import take_event
from modeldeploy.kube.store import Store
from modeldeploy.notify.outbox import Outbox, describe
from modeldeploy.plan.revisions import LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, MANAGED_BY
from modeldeploy.providers import OperatorConfig, load_config
from modeldeploy.reconcile.backoff import Backoff
from modeldeploy.reconcile.io_pool import IoPool
from modeldeploy.reconcile.measure import Measurer
from modeldeploy.reconcile.peering import follow_peering
from modeldeploy.reconcile.queue import WorkQueue
from modeldeploy.reconcile.reconciler import Reconciler
from modeldeploy.reconcile.relist import RELIST_DELAY_SECONDS, ListingWatch, relist_all
from modeldeploy.settings import OperatorSettings

logger = logging.getLogger("modeldeploy.handlers")

WATCH_EVENTS = Counter(
    "modeldeploy_watch_events_total",
    "Watch events of ModelDeployments and their children, by kind and by what they led to: news (a "
    "reconcile), echo (the operator's own write, planned from already), stale (older than the cached "
    "version), unchanged (a Deployment or ReplicaSet change in nothing a reconcile reads), deleted.",
    ["kind", "outcome"],
)


KOPF_FINALIZER = "modeldeploy.io/kopf"
"""kopf's finalizer name, which it never adds (it would for a deletion handler; there is none)."""

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def in_cluster_namespace() -> str | None:
    try:
        return open(SERVICE_ACCOUNT_NAMESPACE).read().strip() or None
    except OSError:
        return None


def api_server_endpoints(server: str) -> set[tuple[str, int]]:
    """The API server's addresses and ports (its URL, resolved, and the in-cluster Service)."""
    endpoints: set[tuple[str, int]] = set()
    parts = urlsplit(server)
    if parts.hostname:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM):
                endpoints.add((str(info[4][0]), port))
        except OSError:
            logger.warning("cannot resolve the API server %s to refuse outbound calls to it", parts.hostname)
    host, port_text = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if host and port_text and port_text.isdigit():
        endpoints.add((host, int(port_text)))
    return endpoints


def egress_policy(config: OperatorConfig, settings: OperatorSettings, client: KubeClient) -> EgressPolicy:
    """The admin's allow-list (config file plus flags; private addresses when neither gives one)."""
    allow = [*(config.egress.allow or ()), *settings.egress_allow]
    if config.egress.allow is None and not settings.egress_allow:
        allow = list(IN_CLUSTER_DEFAULT)
    return EgressPolicy.parse(allow, api_server_endpoints(client.server))


def namespace_gone(raw_event: kopf.RawEvent) -> bool:
    """Whether a watched namespace is gone: only once the API server says it was deleted."""
    return raw_event.get("type") == "DELETED"


def watch_terminating_namespaces_to_the_end() -> None:
    """Keep kopf's watches in a served namespace until the namespace is gone.

    An operator given namespaces (``--namespace``, the chart's ``watchNamespaces``) that may
    list Namespaces lets kopf follow them, and kopf stops its watches in a namespace as soon
    as the namespace is marked for deletion and shows no blocking condition yet: that is the
    first status the namespace controller writes, before it deletes anything (kopf 1.45.2;
    nolar/kopf#1088). The ModelDeployments in it then never see their own deletion, keep
    their finalizer, and the namespace stays Terminating for ever. kopf reads the predicate
    from its module each time, so replacing it here is enough; a unit test checks that kopf
    still has it and still calls it.
    """
    kopf_observation.is_deleted = namespace_gone


def build_registry(settings: OperatorSettings, client: KubeClient) -> kopf.OperatorRegistry:
    operator_settings = settings
    watch_terminating_namespaces_to_the_end()
    background: list[asyncio.Task[None]] = []
    registry = kopf.OperatorRegistry()
    store = Store()
    config = load_config(settings.config).with_prometheus_url(settings.prometheus_url)
    if settings.inline_providers:
        config = config.model_copy(update={"inline_providers": True})
    pool = IoPool(settings.io_workers, settings.io_per_deployment, settings.io_per_namespace)
    measurer = Measurer(
        client,
        config,
        Outbound(egress_policy(config, settings, client)),
        settings.service_url_template,
        settings.operator_namespace or in_cluster_namespace(),
        pool,
    )
    outbox = Outbox(config, Outbound(egress_policy(config, settings, client)))
    logger.info("notifications: %s", describe(config))
    reconciler = Reconciler(client, store, measurer, resync_seconds=settings.resync_seconds, outbox=outbox)
    queue = WorkQueue(
        reconciler,
        workers=settings.workers,
        urgent=reconciler.urgent,
        backoff=Backoff(base=settings.retry_base_seconds, cap=settings.retry_max_seconds),
    )
    pool.notify = queue.threadsafe_trigger

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # kopf removes its finalizer from any object of a kind it has no deletion handler for, so
        # it must not be ours: the planner adds and removes modeldeploy.io/cleanup itself.
        settings.persistence.finalizer = KOPF_FINALIZER
        settings.persistence.progress_storage = kopf.StatusProgressStorage(
            field="status.operatorState.kopf", touch_field="status.operatorState.touch"
        )
        settings.persistence.diffbase_storage = LeanDiffBaseStorage(
            registry=registry, field="status.operatorState.lastHandledConfiguration"
        )
        settings.posting.enabled = False  # the operator posts its own, meaningful Events
        settings.watching.server_timeout = 600
        settings.watching.client_timeout = 660
        settings.networking.request_timeout = 30
        outbox.start()
        queue.start()
        if operator_settings.peering:
            namespace = operator_settings.namespaces[0] if operator_settings.namespaces else None
            background.append(
                asyncio.create_task(
                    follow_peering(
                        client, operator_settings.peering, namespace, operator_settings.priority, queue, store
                    )
                )
            )

    @kopf.on.cleanup(registry=registry)
    async def shutdown(**_: Any) -> None:
        for task in background:
            task.cancel()
        await queue.stop()
        pool.shutdown()
        outbox.stop()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        config = client.configuration
        token = client.token()  # read again first: a rotated ServiceAccount token
        return kopf.ConnectionInfo(
            server=client.server,
            ca_path=config.ssl_ca_cert,
            insecure=not config.verify_ssl,
            certificate_path=config.cert_file,
            private_key_path=config.key_file,
            scheme="Bearer" if token else None,
            token=token,
        )

    listings = ListingWatch()

    async def relist_later(kind: Kind) -> None:
        await asyncio.sleep(RELIST_DELAY_SECONDS)
        try:
            owners = await asyncio.to_thread(relist_all, client, store, kind, operator_settings.namespaces)
        except Exception:
            logger.exception("listing %s again after a watch gap failed", kind.plural)
            return
        for owner in owners:
            queue.trigger(owner)

    def listed_again(kind: Kind) -> None:
        logger.info("the %s watch listed again; replacing the cache's view after it", kind.plural)
        task = asyncio.create_task(relist_later(kind))
        background.append(task)
        task.add_done_callback(lambda done: background.remove(done) if done in background else None)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def model_deployment_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        if listings.saw("ModelDeployment", event.get("type")):
            listed_again(MODEL_DEPLOYMENT)
        meta = body["metadata"]
        outcome = take_event(store, MODEL_DEPLOYMENT, event.get("type"), body)
        WATCH_EVENTS.labels("ModelDeployment", outcome).inc()
        if outcome in ("news", "deleted"):  # deleted: to forget it
            queue.trigger((meta["namespace"], meta["name"]))

    for kind in (*CHILD_KINDS, *READ_KINDS):
        _watch_children(registry, kind, store, queue, listings, listed_again)

    return registry


class LeanDiffBaseStorage(kopf.StatusDiffBaseStorage):
    """kopf's diff base: none at all while no handler needs one, else built without first copying
    what it then drops.

    kopf builds an object's "essence" on every watch event of every kind it watches, children
    included, and diffs it against the one stored in the object, whether or not a handler will
    read the diff: only change handlers (create, update, delete, resume) and daemons do, and the
    operator registers none (see the module's docstring). So while ``registry`` holds none, the
    essence is empty: the copy and the diff cost 4 % of the samples that held the GIL in a py-spy
    profile at N = 100, for nothing.

    When one is registered, the essence is kopf's own, built from a body without the parts kopf
    drops: kopf deep-copies the whole body, then deletes its metadata and status, and with
    hundreds of canaries that copy of each status (the history, the analysis) and of each
    child's managedFields was once the largest single cost of the operator's CPU.
    """

    def __init__(self, *, registry: kopf.OperatorRegistry, field: str) -> None:
        super().__init__(field=field)
        self._registry = registry

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        fields = list(extra_fields or [])
        if fields:  # a handler watching a field (status, say) that would be dropped: as kopf does it
            return super().build(body=body, extra_fields=fields)
        if not self.needed():
            return cast(kopf.BodyEssence, {})
        metadata = body.get("metadata") or {}
        kept = {k: v for k, v in body.items() if k not in ("metadata", "status")}
        kept["metadata"] = {k: metadata[k] for k in ("labels", "annotations") if k in metadata}
        return super().build(body=cast(kopf.Body, kept))

    def needed(self) -> bool:
        """Whether any handler reads the diff: a change handler or a daemon (of any resource)."""
        registry = self._registry
        return bool(registry._changing.get_all_handlers() or registry._spawning.get_all_handlers())


def _watch_children(
    registry: kopf.OperatorRegistry,
    kind: Kind,
    store: Store,
    queue: WorkQueue,
    listings: ListingWatch,
    listed_again: Callable[[Kind], None],
) -> None:
    group, _, version = kind.api_version.rpartition("/")
    # A ReplicaSet carries its pod template's labels: the instance, not modeldeploy.io/name.
    owner_label = LABEL_INSTANCE if kind in READ_KINDS else LABEL_NAME

    async def child_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        if listings.saw(kind.kind, event.get("type")):
            listed_again(kind)
        meta = body["metadata"]
        outcome = take_event(store, kind, event.get("type"), body)
        WATCH_EVENTS.labels(kind.kind, outcome).inc()
        owner = (meta.get("labels") or {}).get(owner_label)
        if owner and outcome in ("news", "deleted"):
            queue.trigger((meta["namespace"], owner))

    kopf.on.event(
        group,
        version,
        kind.plural,
        registry=registry,
        labels={LABEL_MANAGED_BY: MANAGED_BY},
        id=f"watch-{kind.plural}",
    )(child_event)
