"""The plugin's tables and output formats, and the errors it words for people, without a cluster."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from modeldeploy.cli.connection import CliError, connect, explain
from modeldeploy.cli.output import age, bar, dump, table
from modeldeploy.cli.plugin import pause_advice
from modeldeploy.cli.tables import card_data, card_table, history_table, list_table
from modeldeploy.kube.client import ApiError

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
NOW = datetime(2026, 11, 22, 10, 30, 0, tzinfo=UTC)
STABLE, CANDIDATE = "fraud-3-1-0-5d8c1", "fraud-3-2-0-7c9f2"


def mid_canary() -> dict[str, Any]:
    """fraud in risk at canary step 2/3 (25%), analysis running, fallback on standby, 3.1.0 stable."""
    loaded: dict[str, Any] = yaml.safe_load((SNAPSHOTS / "mid_canary.yaml").read_text())["object"]
    return loaded


def events() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load((SNAPSHOTS / "mid_canary.yaml").read_text())["events"]
    return loaded


def test_list_table_shows_phase_versions_stage_step_and_weight() -> None:
    stable = mid_canary()
    stable["metadata"].update(name="churn", namespace="growth")
    stable["status"].update(phase="Stable", candidate=None)
    lines = list_table([mid_canary(), stable], NOW).splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "PHASE", "STABLE", "CANDIDATE", "STAGE", "WEIGHT", "AGE"]
    assert lines[1].split() == ["growth", "churn", "Stable", "3.1.0", "-", "-", "-", "2d"]
    assert lines[2].split() == [
        "risk",
        "fraud",
        "Progressing",
        "3.1.0",
        "3.2.0",
        "Canary",
        "2/3",
        "25%",
        "2d",
    ]


def test_history_table_lists_every_entry_oldest_first() -> None:
    lines = history_table(mid_canary()).splitlines()
    assert lines[0].split() == ["REVISION", "VERSION", "OUTCOME", "REASON", "AT", "MESSAGE"]
    assert lines[2].split() == [STABLE, "3.1.0", "Promoted", "AnalysisPassed", "2026-11-21T08:00:00Z"]


def test_card_takes_the_stable_card_from_the_kept_revision_when_the_spec_moved_on() -> None:
    data = card_data(mid_canary())
    assert data["stable"]["revision"] == STABLE and data["stable"]["card"]["metrics"] == {"auc": "0.91"}
    assert data["candidate"]["revision"] == CANDIDATE and data["candidate"]["card"]["metrics"] == {
        "auc": "0.93"
    }
    rows = {line.split()[0]: line.split()[1:] for line in card_table(mid_canary()).splitlines()}
    assert rows["FIELD"] == ["STABLE", "CANDIDATE"]
    assert rows["metrics.auc"] == ["0.91", "0.93"]
    assert rows["trainingData"] == ["s3://datasets/fraud/2026-07", "s3://datasets/fraud/2026-10"]


def test_card_of_a_stable_object_comes_from_the_spec() -> None:
    obj = mid_canary()
    obj["status"]["candidate"] = None
    obj["status"]["stable"] = {"revision": CANDIDATE, "version": "3.2.0"}
    data = card_data(obj)
    assert list(data) == ["stable"] and data["stable"]["card"]["owner"] == "risk-ml@example.com"
    assert card_table(obj).splitlines()[0].split() == ["FIELD", "STABLE"]


def test_dump_round_trips_as_json_and_yaml() -> None:
    obj = mid_canary()
    assert json.loads(dump(obj, "json")) == obj
    assert yaml.safe_load(dump(obj, "yaml")) == obj


def test_table_ages_and_bars() -> None:
    assert table(["A", "LONGER"], [["xyz", "1"]]) == "A     LONGER\nxyz   1\n"
    assert [age(NOW - timedelta(seconds=s), NOW) for s in (5, 190, 1500, 7380, 40000, 300000)] == [
        "5s",
        "3m10s",
        "25m",
        "2h3m",
        "11h",
        "3d",
    ]
    assert age(None, NOW) == "-"
    assert bar(0.5, 12) == "[#####.....]"


def test_pause_advice_shows_the_exact_yaml_to_commit() -> None:
    advice = pause_advice("risk", "fraud", True)
    assert "  metadata:\n    name: fraud\n    namespace: risk\n  spec:\n    paused: true\n" in advice
    assert "--force" in advice and "Nothing was changed" in advice
    assert "paused: false" in pause_advice("risk", "fraud", False)


def test_api_errors_are_worded_for_people() -> None:
    assert str(explain(ApiError(403, "Forbidden", "cannot get x"))) == "forbidden: cannot get x"
    assert (
        str(explain(ApiError(404, "NotFound", "x"), what="modeldeployment a/b"))
        == "modeldeployment a/b not found"
    )


def test_a_context_missing_from_the_kubeconfig_is_named(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "risk"}}],
                "current-context": "dev",
            }
        )
    )
    with pytest.raises(
        CliError, match=f"context foo not found in kubeconfig {kubeconfig} \\(contexts: dev\\)"
    ):
        connect(str(kubeconfig), "foo", None)
    assert connect(str(kubeconfig), None, None).namespace == "risk"
    assert connect(str(kubeconfig), "dev", "other").namespace == "other"
