"""`kubectl modeldeploy ...` against the local control plane with the operator running.

Each command runs in-process (``modeldeploy.cli.main.main([...])``, the function
behind both the ``modeldeploy`` and ``kubectl-modeldeploy`` scripts) with the
test cluster's kubeconfig; stdout and stderr are captured. Rollouts use a
canary step without a pause, which waits for a person: exactly what
``promote``, ``abort`` and ``retry`` are for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetest import EXAMPLES, apply, fraud, md_status, wait_for, wait_phase
from modeldeploy.api import parse_spec
from modeldeploy.cli.main import main
from modeldeploy.plan.revisions import revision_name, revision_source

pytestmark = pytest.mark.usefixtures("operator")

WAIT_FOR_PROMOTE = {"canary": {"steps": [{"weight": 30}]}}
INVALID = Path(__file__).resolve().parents[1] / "manifests" / "invalid"


def manifest(version: str, owner: str, **spec: Any) -> dict[str, Any]:
    doc = fraud(version, **spec)
    doc["spec"]["model"]["card"] = {"owner": owner, "metrics": {"auc": f"0.9{version[0]}"}}
    return doc


def revision(doc: dict[str, Any]) -> str:
    parsed = parse_spec(doc["spec"])
    return revision_name(doc["metadata"]["name"], revision_source(parsed.model, parsed.runtime))


class Cli:
    """Runs the plugin in-process against the test cluster and namespace."""

    def __init__(self, cluster: Any, namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.kubeconfig, self.namespace, self.capsys = str(cluster.kubeconfig), namespace, capsys

    def __call__(self, *args: str, code: int = 0, kubeconfig: str | None = None) -> str:
        self.capsys.readouterr()
        result = main([*args, "--kubeconfig", kubeconfig or self.kubeconfig, "-n", self.namespace])
        out, err = self.capsys.readouterr()
        assert result == code, f"exit {result}; stdout: {out}; stderr: {err}"
        assert "Traceback" not in out + err
        return out if code == 0 else err


@pytest.fixture
def cli(cluster: Any, namespace: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(cluster, namespace, capsys)


def canary_waiting(cluster: Any, namespace: str) -> tuple[str, str]:
    """fraud with 1.0.0 stable and 2.0.0 at a canary step that waits for promote; their revisions."""
    v1 = manifest("1.0.0", "alice@example.com", strategy=WAIT_FOR_PROMOTE)
    v2 = manifest("2.0.0", "bob@example.com", strategy=WAIT_FOR_PROMOTE)
    apply(cluster, namespace, v1)
    wait_phase(cluster, namespace, "fraud", "Stable")
    apply(cluster, namespace, v2)
    wait_for(
        "candidate at the canary step",
        lambda: (md_status(cluster, namespace, "fraud").get("candidate") or {}).get("weight") == 30,
    )
    return revision(v1), revision(v2)


def test_reads_list_get_watch_history_card_in_every_format_then_promote(
    cli: Cli, cluster: Any, namespace: str
) -> None:
    v1, v2 = canary_waiting(cluster, namespace)

    rows = [line.split() for line in cli("list").splitlines()]
    assert rows[0] == ["NAMESPACE", "NAME", "PHASE", "STABLE", "CANDIDATE", "STAGE", "WEIGHT", "AGE"]
    assert rows[1][:8] == [namespace, "fraud", "Progressing", "1.0.0", "2.0.0", "Canary", "1/1", "30%"]
    everywhere = main(["list", "-A", "--kubeconfig", cli.kubeconfig])
    assert everywhere == 0 and namespace in cli.capsys.readouterr().out
    listed = yaml.safe_load(cli("list", "-o", "yaml"))
    assert [i["metadata"]["name"] for i in listed["items"]] == ["fraud"]

    view = cli("get", "fraud")
    assert f"Namespace:  {namespace}" in view and "Phase:      Progressing" in view
    assert "Step:    1/1" in view and "waits for promote" in view
    assert f"candidate  {v2}   30%" in view and f"stable     {v1}   70%" in view
    assert "RevisionCreated" in view  # the Events section
    assert "\x1b[" not in view  # no colour: stdout is not a terminal
    assert json.loads(cli("get", "fraud", "-o", "json"))["status"]["candidate"]["revision"] == v2
    assert yaml.safe_load(cli("get", "fraud", "-o", "yaml"))["metadata"]["name"] == "fraud"
    watched = cli("get", "fraud", "--watch", "--interval", "0.2", "--watch-count", "2")
    assert watched.count("Name:       fraud") == 2

    card = {line.split()[0]: line.split()[1:] for line in cli("card", "fraud").splitlines()}
    assert card["FIELD"] == ["STABLE", "CANDIDATE"]
    assert card["owner"] == ["alice@example.com", "bob@example.com"]
    assert card["metrics.auc"] == ["0.91", "0.92"]
    assert json.loads(cli("card", "fraud", "-o", "json"))["candidate"]["revision"] == v2

    out = cli("promote", "fraud")
    assert f"Promote requested for modeldeployment {namespace}/fraud" in out
    assert "the operator will carry it out" in out
    wait_for("promoted", lambda: md_status(cluster, namespace, "fraud")["stable"]["revision"] == v2)
    status = wait_phase(cluster, namespace, "fraud", "Stable")
    assert "action" not in status  # carried out and cleared

    history = [line.split() for line in cli("history", "fraud").splitlines()]
    assert history[0] == ["REVISION", "VERSION", "OUTCOME", "REASON", "AT", "MESSAGE"]
    assert [v2, "2.0.0", "Promoted"] == history[-1][:3]
    assert yaml.safe_load(cli("history", "fraud", "-o", "yaml"))[-1]["revision"] == v2


def test_abort_rolls_the_candidate_back_and_retry_starts_it_again(
    cli: Cli, cluster: Any, namespace: str
) -> None:
    _, v2 = canary_waiting(cluster, namespace)
    assert "Abort requested" in cli("abort", "fraud")
    status = wait_phase(cluster, namespace, "fraud", "RolledBack")
    assert status["history"][-1]["outcome"] == "Aborted"

    out = cli("retry", "fraud")
    assert "Retry requested" in out and "note:" not in out
    wait_for(
        "candidate again",
        lambda: (md_status(cluster, namespace, "fraud").get("candidate") or {}).get("revision") == v2,
    )


def test_undo_to_a_named_revision(cli: Cli, cluster: Any, namespace: str) -> None:
    v1 = manifest("1.0.0", "alice@example.com")
    apply(cluster, namespace, v1)
    wait_phase(cluster, namespace, "fraud", "Stable")
    v2 = manifest("2.0.0", "bob@example.com")
    apply(cluster, namespace, v2)
    wait_for(
        "2.0.0 stable", lambda: md_status(cluster, namespace, "fraud")["stable"]["revision"] == revision(v2)
    )

    out = cli("undo", "fraud", "--to-revision", revision(v1))
    assert f"Undo to {revision(v1)} requested" in out
    wait_for(
        "back on 1.0.0", lambda: md_status(cluster, namespace, "fraud")["stable"]["revision"] == revision(v1)
    )
    assert md_status(cluster, namespace, "fraud")["history"][-1]["reason"] == "Undo"


def test_pause_and_resume_advise_git_and_change_spec_only_with_force(
    cli: Cli, cluster: Any, namespace: str
) -> None:
    apply(cluster, namespace, manifest("1.0.0", "alice@example.com"))
    wait_phase(cluster, namespace, "fraud", "Stable")

    advice = cli("pause", "fraud")
    assert "Pausing belongs in Git" in advice and "  spec:\n    paused: true\n" in advice
    assert "paused" not in (json.loads(cli("get", "fraud", "-o", "json"))["spec"])

    assert "spec.paused set to true" in cli("pause", "fraud", "--force")
    wait_phase(cluster, namespace, "fraud", "Paused")
    assert "paused: false" in cli("resume", "fraud")
    assert "spec.paused set to false" in cli("resume", "fraud", "--force")
    wait_phase(cluster, namespace, "fraud", "Stable")


def test_lint_passes_the_examples_and_names_the_field_of_a_bad_manifest(cli: Cli) -> None:
    examples = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    assert main(["lint", *examples]) == 0
    bad = INVALID / "canary-weight-over-100.yaml"
    assert main(["lint", str(bad)]) == 1
    assert "spec.strategy.canary.steps[1].weight" in cli.capsys.readouterr().out


def _kubeconfig_for(cluster: Any, path: Path, user: dict[str, Any], server: str | None = None) -> str:
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    entry = next(c for c in admin["clusters"] if c["name"] == current["context"]["cluster"])
    if server:
        entry = {"name": entry["name"], "cluster": {**entry["cluster"], "server": server}}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [entry],
                "users": [{"name": "someone", "user": user}],
                "contexts": [{"name": "test", "context": {"cluster": entry["name"], "user": "someone"}}],
                "current-context": "test",
            }
        )
    )
    return str(path)


def test_errors_are_one_clear_line_and_exit_one(
    cli: Cli, cluster: Any, namespace: str, tmp_path: Path
) -> None:
    assert cli("get", "nope", code=1) == f"error: modeldeployment {namespace}/nope not found\n"
    assert f"modeldeployment {namespace}/nope not found" in cli("promote", "nope", code=1)
    assert f"modeldeployment {namespace}/nope not found" in cli("history", "nope", code=1)

    wrong = cli("get", "fraud", "--context", "foo", code=1)
    assert wrong.startswith(f"error: context foo not found in kubeconfig {cli.kubeconfig}")

    cluster.kubectl("-n", namespace, "create", "serviceaccount", "nobody")
    token = cluster.kubectl("-n", namespace, "create", "token", "nobody").stdout.strip()
    nobody = _kubeconfig_for(cluster, tmp_path / "nobody", {"token": token})
    denied = cli("get", "fraud", kubeconfig=nobody, code=1)
    assert denied.startswith("error: forbidden: ") and f"system:serviceaccount:{namespace}:nobody" in denied
    assert cli("list", kubeconfig=nobody, code=1).startswith("error: forbidden: ")
    assert cli("abort", "fraud", kubeconfig=nobody, code=1).startswith("error: forbidden: ")

    closed = _kubeconfig_for(cluster, tmp_path / "closed", {"token": "x"}, server="https://127.0.0.1:9")
    unreachable = cli("list", kubeconfig=closed, code=1)
    assert unreachable.startswith("error: the API server at https://127.0.0.1:9 is unreachable")
