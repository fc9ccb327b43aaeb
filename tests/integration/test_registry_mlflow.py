"""spec.model.registry against a real MLflow registry: an alias followed, outcomes written back.

The session's MLflow server (``mlflow server``, SQLite, local artifacts, on
127.0.0.1) holds real scikit-learn models logged with ``mlflow.sklearn``. The
operator runs as a host process (the registry listens on 127.0.0.1, which a
pod cannot reach) with an admin config offering that registry to the test's
namespace, polled every 2 s. Pods run on kwok nodes. `kubectl modeldeploy card` shows
the registry cards of stable and candidate while v2 waits at its canary step.

Figures printed (``-s``): registry calls per ModelDeployment per minute at
rest, seconds from an alias move to the rollout starting, the server's
start and restart times.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from progressive import error_rate_analysis, manifest, revision

from kubetest import apply, condition, event_reasons, get, items, md_status, wait_for, wait_phase
from modeldeploy.cli.main import main
from modeldeploy_dev.metrics import Exporter, wait_for_value
from modeldeploy_dev.model_registry import MlflowServer, register_iris_models
from modeldeploy_dev.operator import OperatorProcess

POLL = 2.0
ALIAS = "challenger"
STRATEGY = {"canary": {"steps": [{"weight": 50}]}}
"""One canary step that waits for ``promote`` (analysis still runs, and may roll back)."""


def registry_manifest(model: str) -> dict[str, Any]:
    doc = manifest("0", strategy=STRATEGY, analysis=error_rate_analysis(failureLimit=1))
    doc["spec"]["model"] = {
        "name": "fraud-detector",
        "registry": {"provider": "mlflow", "model": model, "alias": ALIAS},
    }
    return doc


def pinned_revision(client: Any, model: str, version: str) -> str:
    """The revision a hand-written spec pinning this version and its artifact URI would make."""
    doc = manifest("0", strategy=STRATEGY, analysis=error_rate_analysis(failureLimit=1))
    uri = client.get_model_version_download_uri(model, version)
    doc["spec"]["model"] = {"name": "fraud-detector", "version": version, "uri": uri}
    return revision(doc)


def registry_calls(operator: OperatorProcess) -> float:
    return sum(
        float(value)
        for value in re.findall(
            r"^modeldeploy_registry_calls_total\{[^}]*\} (\S+)$", operator.metrics(), re.M
        )
    )


def tags_of(client: Any, model: str, version: str) -> dict[str, str]:
    return dict(client.get_model_version(model, version).tags)


@pytest.mark.timeout(1200)  # three models trained and registered on a loaded machine, three rollouts
def test_an_alias_move_rolls_out_outcomes_go_back_and_an_unreachable_registry_holds(
    cluster: Any,
    namespace: str,
    exporter: Exporter,
    prometheus: str,
    mlflow_server: MlflowServer,
    own_operators: Callable[..., OperatorProcess],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def figure(text: str) -> None:
        with capsys.disabled():  # capsys takes the CLI's output; the figures go to the terminal
            print(f"\n{text}", flush=True)

    model = f"fraud-{namespace}"
    began = time.monotonic()
    v1, v2, v3 = register_iris_models(mlflow_server, model, (1.0, 0.5, 0.001))
    figure(f"[figure] three sklearn models logged and registered in {time.monotonic() - began:.1f}s")
    client = mlflow_server.client()
    client.set_registered_model_alias(model, ALIAS, v1)
    rev = {v: pinned_revision(client, model, v) for v in (v1, v2, v3)}
    for good in (v1, v2):
        exporter.set("model_error_rate", 0.001, namespace=namespace, revision=rev[good])
    exporter.set("model_error_rate", 0.5, namespace=namespace, revision=rev[v3])
    wait_for_value(
        prometheus, f'model_error_rate{{namespace="{namespace}",revision="{rev[v3]}"}}', lambda v: v == 0.5
    )

    config = tmp_path / "operator.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "clusterName": "local-test",
                "registryProviders": [
                    {
                        "name": "mlflow",
                        "address": mlflow_server.url,
                        "namespaces": [namespace],
                        "pollInterval": f"{POLL:g}s",
                        "promotionAlias": "production",
                    }
                ],
            }
        )
    )
    operator = own_operators("--config", str(config))

    # The alias's version is served, with the registry's URI and card in status.
    apply(cluster, namespace, registry_manifest(model))
    status = wait_phase(cluster, namespace, "fraud", "Stable", timeout=120)
    assert (status["stable"]["version"], status["stable"]["revision"]) == (v1, rev[v1])
    registry = status["registry"]
    assert registry["uri"] == client.get_model_version_download_uri(model, v1)
    assert registry["uri"].startswith("file://") and registry["alias"] == ALIAS
    card = registry["card"]
    assert card["runId"] == client.get_model_version(model, v1).run_id
    assert set(card["metrics"]) == {"accuracy"} and card["params"] == {"C": "1.0", "max_iter": "500"}
    assert card["datasets"][0].startswith("iris@")
    assert condition(status, "RegistryReachable")["status"] == "True"  # type: ignore[index]
    deployment = get(cluster, namespace, "deployment", rev[v1])
    assert deployment is not None
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["MODEL_VERSION"], env["MODEL_URI"]) == (v1, registry["uri"])

    # Written back: the promotion's tags, and the production alias.
    wait_for(
        "v1 tagged Promoted", lambda: tags_of(client, model, v1).get("modeldeploy.outcome") == "Promoted", 60
    )
    tags = tags_of(client, model, v1)
    assert (tags["modeldeploy.cluster"], tags["modeldeploy.namespace"], tags["modeldeploy.name"]) == (
        "local-test",
        namespace,
        "fraud",
    )
    assert tags["modeldeploy.revision"] == rev[v1] and tags["modeldeploy.at"]
    wait_for(
        "production is v1", lambda: client.get_model_version_by_alias(model, "production").version == v1, 60
    )

    # At rest: one alias read per poll, and no status write.
    time.sleep(2 * POLL)
    before, resource_version = registry_calls(operator), get(cluster, namespace, "modeldeployment", "fraud")
    began = time.monotonic()
    time.sleep(30)
    calls = registry_calls(operator) - before
    per_minute = calls * 60 / (time.monotonic() - began)
    figure(
        f"[figure] registry calls per ModelDeployment per minute at rest: {per_minute:.1f} (poll {POLL:g}s)"
    )
    after = get(cluster, namespace, "modeldeployment", "fraud")
    assert after is not None and resource_version is not None
    assert after["metadata"]["resourceVersion"] == resource_version["metadata"]["resourceVersion"]
    assert calls > 0

    # Moving the alias rolls the new version out through the canary, with no edit of the spec.
    generation = after["metadata"]["generation"]
    moved = time.monotonic()
    client.set_registered_model_alias(model, ALIAS, v2)
    wait_for(
        "the rollout of v2 starts",
        lambda: (md_status(cluster, namespace, "fraud").get("candidate") or {}).get("version") == v2,
        timeout=60,
        interval=0.1,
    )
    figure(f"[figure] alias move to rollout start: {time.monotonic() - moved:.1f}s (poll {POLL:g}s)")
    wait_for(
        "v2 at the canary step",
        lambda: md_status(cluster, namespace, "fraud")["candidate"].get("weight") == 50,
        timeout=60,
    )

    # kubectl modeldeploy card: the registry's cards of stable and candidate side by side.
    def cli(*args: str) -> str:
        capsys.readouterr()
        assert main([*args, "--kubeconfig", str(cluster.kubeconfig), "-n", namespace]) == 0
        return capsys.readouterr().out

    rows = {line.split()[0]: line.split()[1:] for line in cli("card", "fraud").splitlines()}
    assert rows["FIELD"] == ["STABLE", "CANDIDATE"] and rows["version"] == [v1, v2]
    assert rows["registry"] == [f"mlflow:{model}@{ALIAS}"] * 2
    runs = [client.get_model_version(model, v).run_id for v in (v1, v2)]
    assert rows["run"] == runs and rows["run.params.C"] == ["1.0", "0.5"]
    assert len(rows["run.metrics.accuracy"]) == 2
    figure(cli("card", "fraud"))
    cli("promote", "fraud")
    status = wait_for(
        "v2 stable",
        lambda: (
            (s := md_status(cluster, namespace, "fraud"))["stable"]["version"] == v2
            and s["phase"] == "Stable"
            and s
        ),
        timeout=120,
    )
    assert status["stable"]["revision"] == rev[v2]
    assert [(h["version"], h["outcome"]) for h in status["history"]][-1] == (v2, "Promoted")
    assert get(cluster, namespace, "modeldeployment", "fraud")["metadata"]["generation"] == generation  # type: ignore[index]
    event_reasons(cluster, namespace, "RegistryVersionChanged")
    wait_for(
        "production is v2", lambda: client.get_model_version_by_alias(model, "production").version == v2, 60
    )
    assert tags_of(client, model, v2)["modeldeploy.outcome"] == "Promoted"

    # A version that fails its analysis is rolled back, and the registry hears why.
    client.set_registered_model_alias(model, ALIAS, v3)
    status = wait_phase(cluster, namespace, "fraud", "RolledBack", timeout=120)
    last = status["history"][-1]
    assert (last["version"], last["outcome"], status["stable"]["version"]) == (v3, "RolledBack", v2)
    wait_for(
        "v3 tagged RolledBack",
        lambda: tags_of(client, model, v3).get("modeldeploy.outcome") == "RolledBack",
        60,
    )
    assert tags_of(client, model, v3)["modeldeploy.reason"] == last["reason"]
    assert client.get_model_version_by_alias(model, "production").version == v2

    # An unreachable registry changes nothing, and the condition says so.
    held = md_status(cluster, namespace, "fraud")
    mlflow_server.stop()
    status = wait_for(
        "RegistryReachable False",
        lambda: (
            (s := md_status(cluster, namespace, "fraud"))
            and (condition(s, "RegistryReachable") or {}).get("status") == "False"
            and s
        ),
        timeout=60,
    )
    unreachable = condition(status, "RegistryReachable")
    assert unreachable is not None and unreachable["reason"] == "Unreachable"
    assert (
        f"version {v3} stays" in unreachable["message"]
        and "cannot reach the registry" in unreachable["message"]
    )
    time.sleep(4 * POLL)
    status = md_status(cluster, namespace, "fraud")
    for key in ("phase", "stable", "candidate", "traffic", "registry", "history"):
        assert status.get(key) == held.get(key), key
    assert {d["metadata"]["name"] for d in items(cluster, namespace, "deployments")} >= {rev[v2]}
    event_reasons(cluster, namespace, "RegistryUnreachable")

    restarted = mlflow_server.start()
    figure(f"[figure] mlflow server restarted in {restarted:.1f}s")
    wait_for(
        "RegistryReachable True again",
        lambda: (
            (condition(md_status(cluster, namespace, "fraud"), "RegistryReachable") or {}).get("status")
            == "True"
        ),
        timeout=60,
    )
    status = md_status(cluster, namespace, "fraud")
    assert (status["phase"], status["stable"]["version"]) == ("RolledBack", v2)
