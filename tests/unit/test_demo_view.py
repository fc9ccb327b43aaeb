"""The demo's live line and summary: what a reader sees, from status alone."""

from __future__ import annotations

import pytest

from modeldeploy_dev.demo.manifests import FAST, thresholds
from modeldeploy_dev.demo.view import Scenario, StepSplit, live_line, per_second, summary

pytestmark = pytest.mark.unit

CANARY = {
    "phase": "Progressing",
    "stable": {"revision": "digits-1", "version": "1.0.0"},
    "candidate": {"revision": "digits-2", "version": "2.0.0", "stage": "Canary", "step": 0},
    "traffic": [
        {"revision": "digits-1", "role": "stable", "weight": 75},
        {"revision": "digits-2", "role": "candidate", "weight": 25},
    ],
    "analysis": [
        {"metric": "error-rate", "phase": "Successful", "value": 0.0},
        {"metric": "misclassification-rate", "phase": "Failed", "value": 0.41, "stableValue": 0.034},
    ],
}


def test_live_line_shows_stage_weights_each_metric_against_its_bound_and_who_answered() -> None:
    line = live_line("12:00:05", CANARY, FAST.steps, thresholds(), {"1.0.0": 30, "2.0.0": 10})
    assert line == (
        "12:00:05 Progressing Canary 1/2 25% | 1.0.0 75% / 2.0.0 25% | error-rate 0.000 <= 0.01 ok"
        " | misclassification-rate 0.410 (stable 0.034) <= stable + 0.02 FAIL"
        " | users got 1.0.0 30/s 2.0.0 10/s"
    )


def test_live_line_in_shadow_shows_the_mirror_and_what_the_servers_answered() -> None:
    shadow = {
        "phase": "Progressing",
        "stable": {"version": "2.0.0"},
        "candidate": {"version": "3.0.0", "stage": "Shadow"},
        "traffic": [
            {"role": "stable", "weight": 100},
            {"role": "candidate", "weight": 0, "mirrorPercent": 100},
        ],
    }
    line = live_line("12:00:05", shadow, FAST.steps, thresholds(), {"2.0.0": 40}, {"2.0.0": 40, "3.0.0": 40})
    assert line == (
        "12:00:05 Progressing Shadow         | 2.0.0 100% / 3.0.0 0% (+mirror 100%)"
        " | users got 2.0.0 40/s | servers answered 2.0.0 40/s 3.0.0 40/s"
    )


def test_per_second_rates_between_two_snapshots() -> None:
    assert per_second({"1.0.0": 100}, {"1.0.0": 180, "2.0.0": 20}, 2.0) == {"1.0.0": 40, "2.0.0": 10}


def test_rollback_counts_as_expected_only_when_the_named_metric_caused_it() -> None:
    scenario = Scenario("corrupted labels", "3.0.0", "RolledBack", "misclassification-rate")
    scenario.outcome, scenario.reason = "RolledBack", "MetricFailed"
    scenario.message = "misclassification-rate 0.41 - stable 0.03 = 0.38 > 0.02 (maxDiff) (failures 2/2)"
    assert scenario.as_expected
    assert scenario.verdict() == "version 3.0.0 RolledBack by misclassification-rate, as expected"
    scenario.message = "p99-latency 0.3 > max 0.1"
    assert not scenario.as_expected
    assert "NOT as expected" in scenario.verdict()


def test_summary_says_ok_only_when_every_scenario_ended_as_expected() -> None:
    good = Scenario("a better model", "2.0.0", "Promoted", outcome="Promoted", reason="AnalysisPassed")
    lines = summary([good], {"1.0.0": 0.78, "2.0.0": 0.97}, {"1.0.0": 10}, {"1.0.0": 8}, 10, 0, 75)
    assert "Scenario 1: a better model: version 2.0.0 Promoted (AnalysisPassed), as expected (0s)" in lines
    assert "  version 1.0.0: 10 answers, accuracy 0.800" in lines
    assert "  version 2.0.0: 0 answers (never served live)" in lines
    assert lines[-1].startswith("OK: every scenario ended as expected, in 1m15s")
    bad = Scenario("a better model", "2.0.0", "Promoted", outcome="RolledBack", reason="MetricFailed")
    assert summary([bad], {}, {}, {}, 0, 0, 1)[-1].startswith("FAILED")


def test_each_canary_step_shows_the_split_the_servers_counted_beside_the_declared_weight() -> None:
    good = Scenario("a better model", "2.0.0", "Promoted", outcome="Promoted", reason="AnalysisPassed")
    good.splits = [StepSplit(25, 300, 100), StepSplit(50, 0, 0)]
    servers = {"1.0.0": (700, 0, 0.78), "2.0.0": (500, 1, 0.97)}
    lines = summary([good], {"1.0.0": 0.78, "2.0.0": 0.97}, {"1.0.0": 10}, {"1.0.0": 8}, 11, 1, 75, servers)
    assert "  canary step 1: declared 25%, observed 25.0% at the servers (100 of 400 answers)" in lines
    assert "  canary step 2: declared 50%, observed n/a at the servers (0 of 0 answers)" in lines
    assert "Live traffic through the gateway: 11 requests, 1 failed; answers users got:" in lines
    assert "  version 2.0.0: 500 answers, 1 failures, accuracy 0.970 on labelled requests" in lines
