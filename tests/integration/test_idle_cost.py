"""An operator watching objects at rest costs the API server nothing.

Counted two ways: the API server's own audit log (every request the operator's
identity made, watches included) and the operator's request counter.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any

from kubetest import apply, example, md_status, wait_for
from modeldeploy_dev.operator import OperatorProcess

MODELS = 20
IDLE_SECONDS = 60
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def audit_requests(path: Any, user: str, since: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    with open(path) as log:
        for line in log:
            entry = json.loads(line)
            if entry.get("user", {}).get("username") != user:
                continue
            if entry["requestReceivedTimestamp"] < since:
                continue
            counts[entry["verb"]] += 1
    return counts


def operator_requests(operator: OperatorProcess) -> Counter[str]:
    counts: Counter[str] = Counter()
    for match in re.finditer(
        r'^modeldeploy_kube_api_requests_total\{code="[^"]*",verb="([^"]+)"\} ([0-9.e+]+)$',
        operator.metrics(),
        re.MULTILINE,
    ):
        counts[match.group(1)] += int(float(match.group(2)))
    return counts


def test_twenty_model_deployments_at_rest_for_a_minute_cost_zero_writes(
    cluster: Any, namespace: str, operator: OperatorProcess
) -> None:
    for i in range(MODELS):
        manifest = example("minimal")
        manifest["metadata"]["name"] = f"model-{i:02d}"
        apply(cluster, namespace, manifest)
    wait_for(
        f"{MODELS} ModelDeployments Stable",
        lambda: all(
            md_status(cluster, namespace, f"model-{i:02d}").get("phase") == "Stable" for i in range(MODELS)
        ),
        timeout=180,
        interval=1,
    )
    # Earlier tests' namespaces may still be terminating, which is work, not rest.
    wait_for(
        "no namespace terminating",
        lambda: (
            not [
                ns
                for ns in json.loads(cluster.kubectl("get", "namespaces", "-o", "json").stdout)["items"]
                if ns["status"].get("phase") == "Terminating"
            ]
        ),
        timeout=120,
        interval=1,
    )
    time.sleep(5)  # let the last status writes and their watch events settle

    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    before = operator_requests(operator)
    time.sleep(IDLE_SECONDS)
    after = operator_requests(operator)

    client_calls = after - before
    client_writes = sum(
        n for verb, n in client_calls.items() if verb in {"apply", "patch", "create", "delete"}
    )
    print(f"\nidle {IDLE_SECONDS}s, {MODELS} ModelDeployments; operator client calls: {dict(client_calls)}")
    assert client_writes == 0, client_calls

    if getattr(cluster, "local", False):
        user = operator.username  # type: ignore[attr-defined]
        audited = audit_requests(cluster.audit_log, user, since)
        writes = sum(n for verb, n in audited.items() if verb in WRITE_VERBS)
        reads = sum(n for verb, n in audited.items() if verb not in WRITE_VERBS)
        print(f"audit log, user {user}, {IDLE_SECONDS}s idle: {dict(audited)}; reads={reads}")
        assert writes == 0, audited
        # Watches stay open (a reconnect now and then is a read); nothing polls.
        assert reads <= 2 * 6, audited
    else:
        print("no audit log on an existing cluster: counted with the operator's own request counter only")
