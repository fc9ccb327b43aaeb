"""A hostile tenant against the real API server and the running operator: each attack refused, with why.

The tenant is ``alice``, who holds only the aggregated ``edit`` ClusterRole in
her own namespace; every request of hers is made with ``kubectl --as=alice``
(impersonation). ``bob`` holds only the chart's ModelDeployment role (he may
manage ModelDeployments, not Pods). The chart's admission policies are
installed from a ``helm template`` of the chart, for the same release as the
operator the suite runs (so the operator's identity is the exempt one).

Each attack is either refused at admission (the test asserts the message that
names the field) or reaches nothing outside the namespace (the test asserts the
short error class the operator records in status and, where there is a server
to ask, that it was never called).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetest import apply, fraud, items, md_status, wait_for, wait_phase

pytestmark = pytest.mark.usefixtures("operator")

CHART = Path(__file__).resolve().parents[2] / "charts" / "modeldeploy"
OPERATOR_NAMESPACE = "modeldeploy-system"
ALICE = ("--as", "alice", "--as-group", "system:authenticated")
BOB = ("--as", "bob", "--as-group", "system:authenticated")


@pytest.fixture(scope="module")
def policies(cluster: Any) -> Iterator[None]:
    """The chart's admission policies and aggregated roles, as `helm install` would create them."""
    if not getattr(cluster, "local", False):
        pytest.skip("installs cluster-wide admission policies: local cluster only")
    rendered = subprocess.run(
        [cluster.helm_path(), "template", "modeldeploy", str(CHART), "--namespace", OPERATOR_NAMESPACE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kinds = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ClusterRole"}
    documents = [d for d in yaml.safe_load_all(rendered) if d and d.get("kind") in kinds]
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(documents)
    )
    yield
    for doc in documents:
        if doc["kind"].startswith("ValidatingAdmissionPolicy"):
            cluster.kubectl("delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found", check=False)


@pytest.fixture
def tenant(cluster: Any, namespace: str, policies: None) -> str:
    cluster.kubectl(
        "-n", namespace, "create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice"
    )
    cluster.kubectl(
        *("-n", namespace, "create", "rolebinding", "bob-models"),
        *("--clusterrole=modeldeploy-aggregate-to-edit", "--user=bob"),
    )
    wait_for(
        "alice's edit role",
        lambda: run(cluster, ALICE, namespace, "auth", "can-i", "create", "modeldeployments").returncode == 0,
        timeout=90,
        interval=1,
    )
    # A policy is enforced a moment after it is created: wait until one refuses (a dry run, so
    # that an early acceptance stores nothing that later unchanged applies would skip past).
    wait_for(
        "the admission policies",
        lambda: (
            "privileged containers are refused"
            in attempt(cluster, namespace, privileged_pod_template(), dry_run=True)
        ),
        timeout=90,
        interval=1,
    )
    return namespace


def run(cluster: Any, who: tuple[str, ...], namespace: str, *args: str, input: str | None = None) -> Any:
    return cluster.kubectl(*who, "-n", namespace, *args, input=input, check=False)


def attempt(
    cluster: Any,
    namespace: str,
    manifest: dict[str, Any],
    who: tuple[str, ...] = ALICE,
    dry_run: bool = False,
) -> str:
    """Apply ``manifest`` as ``who``; the API server's refusal, or "" when it was accepted."""
    flags = ["--dry-run=server"] if dry_run else []
    result = run(cluster, who, namespace, "apply", *flags, "-f", "-", input=yaml.safe_dump(manifest))
    return "" if result.returncode == 0 else result.stderr + result.stdout


def with_spec(**spec: Any) -> dict[str, Any]:
    manifest = fraud("1.0.0", router="service", replicas=1)
    manifest["spec"].update(spec)
    return manifest


def runtime(pod_template: dict[str, Any]) -> dict[str, Any]:
    return {"image": "ghcr.io/acme/fraud-server:1.4", "podTemplate": pod_template}


def privileged_pod_template() -> dict[str, Any]:
    container = {"name": "model", "securityContext": {"privileged": True}}
    return with_spec(runtime=runtime({"spec": {"containers": [container]}}))


# --- 1. Names are names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "refusal"),
    [
        (
            {
                "analysis": {
                    "prometheus": {
                        "address": "http://prometheus.monitoring:9090",
                        "bearerTokenSecretRef": {"name": "../../kube-system/secrets/admin", "key": "token"},
                    },
                    "metrics": [{"name": "e", "query": "up", "max": 1}],
                }
            },
            "spec.analysis.prometheus.bearerTokenSecretRef.name in body should match",
        ),
        (
            {
                "traffic": {"router": "istio"},
                "strategy": {"warmup": {"path": "/", "payloadConfigMap": "a/b"}},
            },
            "spec.strategy.warmup.payloadConfigMap in body should match",
        ),
        (
            {"traffic": {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "infra/gw"}]}}},
            "spec.traffic.gatewayAPI.parentRefs[0].name in body should match",
        ),
        (
            {"analysis": {"provider": "Other/Team", "metrics": [{"name": "e", "query": "up", "max": 1}]}},
            "spec.analysis.provider in body should match",
        ),
    ],
    ids=["secret-ref-path", "configmap-path", "parent-ref-path", "provider-path"],
)
def test_a_reference_that_is_not_a_name_is_refused_at_admission(
    cluster: Any, tenant: str, spec: dict[str, Any], refusal: str
) -> None:
    assert refusal in attempt(cluster, tenant, with_spec(**spec))


# --- 4. No escalation through the operator ----------------------------------------------------


@pytest.mark.parametrize(
    ("pod_spec", "refusal"),
    [
        ({"containers": [{"name": "m", "securityContext": {"privileged": True}}]}, "privileged containers"),
        ({"hostPID": True, "containers": [{"name": "m"}]}, "hostNetwork, hostPID and hostIPC are refused"),
        (
            {"hostNetwork": True, "containers": [{"name": "m"}]},
            "hostNetwork, hostPID and hostIPC are refused",
        ),
        (
            {"containers": [{"name": "m"}], "volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
            "hostPath volumes are refused",
        ),
        (
            {"containers": [{"name": "m", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]},
            "added capabilities (other than NET_BIND_SERVICE) are refused",
        ),
        (
            {"initContainers": [{"name": "i", "securityContext": {"privileged": True}}], "containers": []},
            "privileged containers",
        ),
    ],
    ids=["privileged", "host-pid", "host-network", "host-path-root", "cap-sys-admin", "privileged-init"],
)
def test_an_escalating_pod_template_is_refused_at_admission(
    cluster: Any, tenant: str, pod_spec: dict[str, Any], refusal: str
) -> None:
    assert refusal in attempt(cluster, tenant, with_spec(runtime=runtime({"spec": pod_spec})))


def test_an_escalating_job_template_is_refused_at_admission(cluster: Any, tenant: str) -> None:
    job = {"spec": {"template": {"spec": {"hostPID": True, "containers": [{"name": "t", "image": "x"}]}}}}
    monitoring = {
        "metrics": [{"name": "drift", "query": "up", "max": 1}],
        "retrain": {"jobTemplate": job},
    }
    assert "hostNetwork, hostPID and hostIPC are refused" in attempt(
        cluster, tenant, with_spec(monitoring=monitoring)
    )


def test_someone_who_may_not_create_pods_may_not_hand_the_operator_a_pod_template(
    cluster: Any, tenant: str
) -> None:
    assert run(cluster, BOB, tenant, "auth", "can-i", "create", "pods").returncode != 0
    template = runtime({"spec": {"serviceAccountName": "deployer", "containers": [{"name": "model"}]}})
    refusal = attempt(cluster, tenant, with_spec(runtime=template), who=BOB)
    assert "you may not create Pods in this namespace yourself" in refusal
    job = {"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "x"}]}}}}
    monitoring = {"metrics": [{"name": "drift", "query": "up", "max": 1}], "retrain": {"jobTemplate": job}}
    assert "you may not create Jobs in this namespace yourself" in attempt(
        cluster, tenant, with_spec(monitoring=monitoring), who=BOB
    )
    assert attempt(cluster, tenant, with_spec(), who=BOB) == "", "a plain ModelDeployment stays his to make"


def test_a_tenant_may_request_actions_but_not_forge_the_status(cluster: Any, tenant: str) -> None:
    apply(cluster, tenant, fraud("1.0.0", router="service", replicas=1))
    wait_phase(cluster, tenant, "fraud", "Stable")
    forged = {"status": {"operatorState": {"revisions": {"evil": {"runtime": {"image": "evil:1"}}}}}}
    for patch in (forged, {"status": {"stable": {"revision": "evil", "version": "6.6.6"}}}):
        result = run(
            cluster, ALICE, tenant, "patch", "modeldeployment", "fraud", "--subresource=status",
            "--type=merge", "-p", yaml.safe_dump(patch),
        )  # fmt: skip
        assert result.returncode != 0
        assert "only the operator writes the status of a ModelDeployment" in result.stderr
    action = {"status": {"action": {"type": "Abort", "requestedAt": "2026-01-01T00:00:00Z"}}}
    allowed = run(
        cluster, ALICE, tenant, "patch", "modeldeployment", "fraud", "--subresource=status",
        "--type=merge", "-p", yaml.safe_dump(action),
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert "evil" not in yaml.safe_dump(md_status(cluster, tenant, "fraud"))


# --- 5. Spec bounds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "refusal"),
    [
        (
            {
                "monitoring": {
                    "metrics": [{"name": "drift", "query": "up", "max": 1}],
                    "retrain": {"webhook": {"url": "http://hooks.acme.io/x", "timeout": "99999h"}},
                }
            },
            "spec.monitoring.retrain.webhook.timeout must be at most 30s",
        ),
        (
            {"traffic": {"router": "istio"}, "strategy": {"warmup": {"path": "/", "requests": 100000}}},
            "spec.strategy.warmup.requests in body should be less than or equal to 10000",
        ),
        (
            {"traffic": {"router": "istio"}, "strategy": {"warmup": {"path": "/", "timeout": "99h"}}},
            "spec.strategy.warmup.timeout must be at most 30m",
        ),
    ],
    ids=["webhook-timeout", "warmup-requests", "warmup-timeout"],
)
def test_a_stalling_spec_is_refused_at_admission_naming_the_limit(
    cluster: Any, tenant: str, spec: dict[str, Any], refusal: str
) -> None:
    assert refusal in attempt(cluster, tenant, with_spec(**spec))


# --- 2 and 3. Credentials stay with the admin; outbound calls have rules ------------------------


class Target:
    """A local HTTP server an attack points the operator at; records whether it was called."""

    def __init__(self, handle: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.calls = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.calls += 1
                if self.command == "POST":
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                handle(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def body_answer(status: int, body: bytes, **headers: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def handle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        try:
            handler.wfile.write(body)
        except OSError:
            return

    return handle


def streamed(size: int) -> Callable[[BaseHTTPRequestHandler], None]:
    """An answer of ``size`` bytes with no Content-Length (chunked), so only reading can cap it."""

    def handle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"x" * 65536
        try:
            for _ in range(size // len(chunk)):
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            return

    return handle


@pytest.fixture
def targets() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], Target]]:
    started: list[Target] = []

    def start(handle: Callable[[BaseHTTPRequestHandler], None]) -> Target:
        started.append(Target(handle))
        return started[-1]

    yield start
    for target in started:
        target.close()


def monitored(analysis: dict[str, Any]) -> dict[str, Any]:
    """A ModelDeployment whose stable revision is measured every 5 s from the given metric source."""
    metric = {"name": "probe", "query": "vector(1)", "max": 2}
    return with_spec(
        analysis={**analysis, "metrics": [metric]},
        monitoring={"interval": "5s", "failureLimit": 1, "metrics": [metric]},
    )


def monitoring_message(cluster: Any, namespace: str) -> str | None:
    results = md_status(cluster, namespace, "fraud").get("monitoring") or []
    return results[0].get("message") if results and results[0].get("message") else None


def apply_as_alice(cluster: Any, namespace: str, manifest: dict[str, Any]) -> None:
    refusal = attempt(cluster, namespace, manifest)
    assert refusal == "", refusal


def test_metrics_from_the_api_server_are_refused_by_the_egress_policy(cluster: Any, tenant: str) -> None:
    apply_as_alice(cluster, tenant, monitored({"prometheus": {"address": cluster.apiserver_url}}))
    message = wait_for("a monitoring result", lambda: monitoring_message(cluster, tenant), timeout=60)
    assert message == "probe: cannot reach Prometheus: refused by egress policy"


def test_metrics_from_the_metadata_address_are_refused_by_the_egress_policy(
    cluster: Any, tenant: str
) -> None:
    apply_as_alice(cluster, tenant, monitored({"prometheus": {"address": "http://169.254.169.254/latest"}}))
    message = wait_for("a monitoring result", lambda: monitoring_message(cluster, tenant), timeout=60)
    assert message == "probe: cannot reach Prometheus: refused by egress policy"


def test_a_redirect_is_not_followed_and_a_body_is_never_copied_into_status(
    cluster: Any, tenant: str, targets: Callable[..., Target]
) -> None:
    secret = targets(body_answer(200, b'{"admin_token": "s3cr3t-value"}'))
    redirect = targets(body_answer(302, b"", Location=f"{secret.url}/api/v1/query"))
    apply_as_alice(cluster, tenant, monitored({"prometheus": {"address": redirect.url}}))
    message = wait_for("a monitoring result", lambda: monitoring_message(cluster, tenant), timeout=60)
    assert message == "probe: HTTP 302: redirects are not followed"
    assert redirect.calls >= 1 and secret.calls == 0

    apply_as_alice(cluster, tenant, monitored({"prometheus": {"address": secret.url}}))
    wait_for(
        "the direct answer measured",
        lambda: monitoring_message(cluster, tenant) == "probe: HTTP 200: not a Prometheus answer",
        timeout=60,
    )
    assert "s3cr3t" not in yaml.safe_dump(md_status(cluster, tenant, "fraud"))


def test_a_provider_the_admin_did_not_offer_is_refused_by_name(cluster: Any, tenant: str) -> None:
    apply_as_alice(cluster, tenant, monitored({"provider": "finance"}))
    message = wait_for("a monitoring result", lambda: monitoring_message(cluster, tenant), timeout=60)
    assert message.startswith(f"probe: metric provider 'finance' is not offered to namespace {tenant}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_64_mib_webhook_answer_is_capped_and_the_operator_lives_on(
    cluster: Any, tenant: str, operator: Any, targets: Callable[..., Target], request: pytest.FixtureRequest
) -> None:
    huge = targets(streamed(64 * 1024 * 1024))
    pid = operator.process.pid
    before = rss_kib(pid)
    webhook = {"url": f"{huge.url}/retrain", "timeout": "20s", "retries": 0}
    drifting = {
        "name": "drift",
        "query": "vector(1)",
        "max": 0,
    }  # always breaching, from the default provider
    apply_as_alice(
        cluster,
        tenant,
        with_spec(
            monitoring={
                "interval": "5s",
                "failureLimit": 1,
                "metrics": [drifting],
                "retrain": {"webhook": webhook},
            }
        ),
    )
    retrain = wait_for(
        "the webhook's outcome",
        lambda: (
            (r := md_status(cluster, tenant, "fraud").get("retrain")) and r.get("outcome") == "Failed" and r
        ),
        timeout=90,
    )
    after = rss_kib(pid)
    assert retrain["message"] == "webhook failed after 1 attempt(s): answer larger than 65536 bytes"
    assert huge.calls == 1 and operator.process.poll() is None and operator.process.pid == pid
    growth = after - before
    request.node.user_properties.append(("rss_kib", (before, after)))
    print(f"operator RSS before {before} KiB, after a capped 64 MiB answer {after} KiB (+{growth} KiB)")
    assert growth < 16 * 1024, f"RSS grew by {growth} KiB"


def test_a_webhook_at_the_api_server_is_refused_and_not_retried(cluster: Any, tenant: str) -> None:
    webhook = {"url": f"{cluster.apiserver_url}/api/v1/namespaces/kube-system/secrets", "retries": 3}
    drifting = {"name": "drift", "query": "vector(1)", "max": 0}
    apply_as_alice(
        cluster,
        tenant,
        with_spec(
            monitoring={
                "interval": "5s",
                "failureLimit": 1,
                "metrics": [drifting],
                "retrain": {"webhook": webhook},
            }
        ),
    )
    started = time.monotonic()
    retrain = wait_for(
        "the webhook's outcome",
        lambda: (
            (r := md_status(cluster, tenant, "fraud").get("retrain")) and r.get("outcome") == "Failed" and r
        ),
        timeout=90,
    )
    assert retrain["message"] == "webhook failed after 1 attempt(s): refused by egress policy"
    assert time.monotonic() - started < 60


def trickle(handler: BaseHTTPRequestHandler) -> None:
    """Headers at once, then one byte a second: no single read ever times out."""
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    try:
        for _ in range(100000):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(1)
    except OSError:
        return


def test_a_prometheus_answering_one_byte_a_second_is_cut_at_the_total_deadline(
    cluster: Any, tenant: str, targets: Callable[..., Target]
) -> None:
    slow = targets(trickle)
    apply_as_alice(cluster, tenant, monitored({"prometheus": {"address": slow.url}}))
    message = wait_for("a monitoring result", lambda: monitoring_message(cluster, tenant), timeout=90)
    assert message == "probe: timed out after 10s"


# --- 6. An admin's quota holds a rollout, and says so ---------------------------------------


def test_a_rollout_held_by_the_namespace_quota_names_the_quota_and_goes_on_when_it_is_raised(
    cluster: Any, namespace: str
) -> None:
    """The candidate's pods are refused by a ResourceQuota: status and an Event quote the refusal,
    traffic stays on stable, and the rollout ends once the admin raises the quota."""
    cluster.kubectl("-n", namespace, "create", "quota", "pods", "--hard=pods=2")
    apply(cluster, namespace, fraud("1.0.0", router="service"))
    stable = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]
    apply(cluster, namespace, fraud("2.0.0", router="service"))

    def held() -> dict[str, Any] | None:
        status = md_status(cluster, namespace, "fraud")
        return status if "exceeded quota" in status.get("message", "") else None

    status = wait_for("the quota's refusal in status", held, timeout=90)
    assert status["phase"] == "Progressing" and status["stable"]["revision"] == stable
    assert "pods cannot be created:" in status["message"] and "limited: pods=2" in status["message"]
    assert status["traffic"] == [{"revision": stable, "role": "stable", "weight": 100}]
    events = wait_for(
        "a FailedCreate Event of the ModelDeployment",
        lambda: [
            e
            for e in items(cluster, namespace, "events")
            if e["reason"] == "FailedCreate" and e["involvedObject"]["kind"] == "ModelDeployment"
        ],
        timeout=15,
    )
    assert "exceeded quota" in events[0]["message"]

    cluster.kubectl("-n", namespace, "patch", "quota", "pods", "-p", '{"spec":{"hard":{"pods":"4"}}}')
    done = wait_phase(cluster, namespace, "fraud", "Stable", timeout=120)
    assert done["stable"]["version"] == "2.0.0" and "cannot be created" not in done.get("message", "")
