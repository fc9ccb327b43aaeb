"""`make demo` as CI runs it: `python -m modeldeploy_dev.demo --fast`, its own control plane, end to end.

The demo starts a second local control plane (its own etcd, API server,
kwok, Prometheus), so it skips against an existing cluster.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from modeldeploy_dev.binaries import REPO_ROOT

TIMEOUT = 420  # seconds: the fast demo takes about two minutes on the 2-core build machine


@pytest.mark.timeout(TIMEOUT + 30)
def test_fast_demo_promotes_the_better_model_and_rolls_back_the_corrupted_one_by_accuracy(
    request: pytest.FixtureRequest,
) -> None:
    if request.config.getoption("--use-existing-cluster"):
        pytest.skip("the demo starts its own local control plane")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "modeldeploy_dev.demo", "--fast"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    print(f"\n`python -m modeldeploy_dev.demo --fast` took {elapsed:.0f}s")
    output = result.stdout + result.stderr
    summary = output[output.find("=== Summary ===") :]
    print(summary)
    assert result.returncode == 0, output[-6000:]
    assert "Scenario 1: a better model: 2.0.0 Promoted (AnalysisPassed), as expected" in summary
    assert "2.0.0 RolledBack" not in summary
    assert (
        "Scenario 2: a model trained on corrupted labels: 3.0.0 RolledBack by misclassification-rate, "
        "as expected" in summary
    )
    assert "3.0.0: 0 answers (never served live)" in summary  # rolled back in shadow: no user saw it
    assert "OK: every scenario ended as expected" in summary
    leftovers = subprocess.run(
        ["pgrep", "-f", "modeldeploy_dev.demo.server"], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == "", "a model server outlived the demo"
