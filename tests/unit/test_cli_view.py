"""The live view of `kubectl modeldeploy get`: a pure rendering, snapshot-tested.

The snapshot is tests/snapshots/get_view.txt. After an intended change to the
view, regenerate it and review the diff:

    MODELDEPLOY_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/unit/test_cli_view.py
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from modeldeploy.cli.view import render, sizes_of, threshold

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


SNAPSHOT = SNAPSHOTS / "get_view.txt"


def test_mid_canary_view_matches_the_snapshot() -> None:
    text = render(mid_canary(), events(), NOW, 120)
    if os.environ.get("MODELDEPLOY_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text(), "view changed: see the module docstring to regenerate the snapshot"


def test_view_shows_step_traffic_thresholds_verdicts_fallback_and_only_the_last_five_events() -> None:
    text = render(mid_canary(), events(), NOW, 120)
    assert "Step:    2/3" in text and "weight 25%" in text
    assert f"stable     {STABLE}   75%" in text and f"candidate  {CANDIDATE}   25%" in text
    assert "<= 1.2 x stable (0.2)" in text and "Inconclusive" in text
    assert "Fallback:   standby (PreviousRevision)" in text
    assert "RevisionCreated" not in text and "AnalysisInconclusive" in text  # oldest dropped, newest kept
    assert "\x1b[" not in text


def test_color_only_when_asked_for_and_columns_stay_aligned() -> None:
    plain = render(mid_canary(), events(), NOW, 120)
    colored = render(mid_canary(), events(), NOW, 120, color=True)
    assert "\x1b[32mSuccessful\x1b[0m" in colored and "\x1b[33mProgressing\x1b[0m" in colored
    strip = colored
    for code in ("\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[1m", "\x1b[2m", "\x1b[0m"):
        strip = strip.replace(code, "")
    assert strip == plain


def test_lines_fit_the_terminal_width() -> None:
    text = render(mid_canary(), events(), NOW, 70)
    assert max(len(line) for line in text.splitlines()) <= 70


def test_active_fallback_is_shown_with_its_reason() -> None:
    obj = mid_canary()
    obj["status"]["conditions"][2].update(
        status="True", reason="FallbackActivated", message="the stable revision has no Ready replica"
    )
    text = render(obj, [], NOW, 120)
    assert "Fallback:   ACTIVE: all traffic on the fallback (PreviousRevision): the stable revision" in text
    assert "Events" not in text


def test_mirroring_is_shown_per_revision() -> None:
    obj = mid_canary()
    obj["status"]["candidate"].update(stage="Shadow", step=None, weight=0)
    obj["status"]["traffic"] = [
        {"revision": STABLE, "role": "stable", "weight": 100},
        {"revision": CANDIDATE, "role": "candidate", "weight": 0, "mirrorPercent": 100},
    ]
    text = render(obj, [], NOW, 120)
    assert "[Shadow] > Canary > Stable" in text and "Hold:    15m" in text
    assert "mirror 100%" in text


def test_monitoring_and_last_retrain_are_rendered_when_the_status_has_them() -> None:
    obj = mid_canary()
    assert "Monitoring" not in render(obj, [], NOW, 120)
    obj["spec"]["monitoring"] = {"metrics": [{"name": "drift-psi", "query": "q", "max": 0.2}]}
    obj["status"]["monitoring"] = [
        {"metric": "drift-psi", "phase": "Failed", "value": 0.31, "measuredAt": "2026-11-22T10:25:00Z"}
    ]
    obj["status"]["retrain"] = {
        "count": 3,
        "job": "fraud-retrain-3",
        "outcome": "Succeeded",
        "at": "2026-11-22T09:30:00Z",
        "metric": "drift-psi",
        "value": 0.31,
    }
    text = render(obj, [], NOW, 120)
    assert re.search(r"drift-psi +0.31 +<= 0.2 +Failed", text), text
    assert (
        "Last retrain: Job fraud-retrain-3 Succeeded, started 1h ago on drift-psi 0.31 (retraining #3)"
        in text
    )
    obj["status"]["retrain"] = {"webhook": "https://ml/retrain", "outcome": "Failed", "message": "HTTP 500"}
    text = render(obj, [], NOW, 120)
    assert "Last retrain: webhook https://ml/retrain Failed\n" in text and "    HTTP 500" in text


def test_a_new_object_without_status_renders() -> None:
    obj = {"metadata": {"name": "fraud", "namespace": "risk"}, "spec": {"model": {"version": "1"}}}
    text = render(obj, [], NOW, 80)
    assert "Phase:      Unknown" in text and "Traffic" not in text


def test_threshold_wording() -> None:
    assert threshold({"max": 0.01}) == "<= 0.01"
    assert threshold({"min": 0.9, "max": 1}) == "<= 1, >= 0.9"
    assert threshold({"compareToStable": {"maxRatio": 1.2, "maxDiff": 5}}, 0.2) == (
        "<= 1.2 x stable (0.2), <= stable (0.2) + 5"
    )
    assert threshold({}) == "-"


def test_revisions_show_current_desired_ready_and_hpa_bounds_per_revision() -> None:
    deployments = [
        {
            "metadata": {"name": STABLE},
            "spec": {"replicas": 10},
            "status": {"replicas": 11, "readyReplicas": 9},
        },
        {
            "metadata": {"name": CANDIDATE},
            "spec": {"replicas": 3},
            "status": {"replicas": 3, "readyReplicas": 3},
        },
    ]
    autoscalers = [
        {"spec": {"scaleTargetRef": {"name": STABLE}, "minReplicas": 2, "maxReplicas": 20}},
        {"spec": {"scaleTargetRef": {"name": CANDIDATE}, "minReplicas": 3, "maxReplicas": 6}},
    ]
    text = render(mid_canary(), [], NOW, 160, sizes=sizes_of(deployments, autoscalers))
    lines = text.splitlines()
    header = next(line for line in lines if "REVISION" in line)
    assert header.split()[-4:] == ["CURRENT", "DESIRED", "READY", "MIN/MAX"]
    stable = next(line for line in lines if line.split()[:2] == ["stable", STABLE])
    candidate = next(line for line in lines if line.split()[:2] == ["candidate", CANDIDATE])
    assert stable.split()[-4:] == ["11", "10", "9", "2/20"]
    assert candidate.split()[-4:] == ["3", "3", "3", "3/6"]
    fixed = render(mid_canary(), [], NOW, 160, sizes=sizes_of(deployments, []))
    assert next(line for line in fixed.splitlines() if line.split()[:1] == ["stable"]).endswith("fixed")


def test_a_registry_model_shows_the_resolved_version_and_where_it_comes_from() -> None:
    obj = {
        "metadata": {"name": "fraud", "namespace": "risk"},
        "spec": {
            "model": {
                "name": "fraud-detector",
                "registry": {"provider": "mlflow", "model": "fraud", "alias": "challenger"},
            }
        },
        "status": {"phase": "Stable", "registry": {"provider": "mlflow", "model": "fraud", "version": "7"}},
    }
    text = render(obj, [], NOW, 100)
    assert "Model:      fraud-detector 7 (registry mlflow:fraud@challenger)" in text
