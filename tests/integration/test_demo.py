"""`make demo` as CI runs it: `python -m modeldeploy_dev.demo --fast`, its own cluster, end to end.

The demo starts its own local cluster with the real node (MLServer model pods,
the Traefik gateway pod) and its own MLflow registry, so it skips against an
existing cluster, and waits for the machine's one real-node slot like the
`real_cluster` fixture. Its model pods fetch their models from that registry.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from modeldeploy_dev.binaries import REPO_ROOT

TIMEOUT = 1500  # seconds: cold image builds, the real node's pods, and a wait for the real-node slot
# The split the model servers count during a canary step, against the declared weight: the
# route moves a moment after the status names the step, and a step lasts about 300 requests.
SPLIT_TOLERANCE = 0.10


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
        env={**os.environ, "MODELDEPLOY_REAL_NODE_WAIT": os.environ.get("MODELDEPLOY_REAL_NODE_WAIT", "900")},
    )
    elapsed = time.monotonic() - started
    print(f"\n`python -m modeldeploy_dev.demo --fast` took {elapsed:.0f}s")
    output = result.stdout + result.stderr
    summary = output[output.find("=== Summary ===") :]
    print(summary)
    assert result.returncode == 0, output[-6000:]
    # The registry's versions 1, 2 and 3 (registered in that order), each rolled out by moving @challenger.
    assert "Scenario 1: a better model: version 2 Promoted (AnalysisPassed), as expected" in summary
    assert "version 2 RolledBack" not in summary
    assert (
        "Scenario 2: a model trained on corrupted labels: version 3 RolledBack by misclassification-rate, "
        "as expected" in summary
    )
    assert "version 3: 0 answers (never served live)" in summary  # rolled back in shadow: no user saw it
    assert "OK: every scenario ended as expected" in summary
    # What modeldeploy wrote back to MLflow: @production on the promoted version only, and the outcomes.
    assert "MLflow now: @challenger -> 2, @production -> 2" in summary
    assert "MLflow now: @challenger -> 3, @production -> 2" in summary
    assert "MLflow version 2 tagged by modeldeploy: outcome=Promoted, reason=AnalysisPassed" in summary
    assert "MLflow version 3 tagged by modeldeploy: outcome=RolledBack, reason=MetricFailed" in summary
    # The model servers counted the mirrored copies version 3 answered, and version 2's canary share.
    served = dict(re.findall(r"^  version (\d+): (\d+) answers, \d+ failures", summary, re.MULTILINE))
    assert int(served["3"]) > 0, summary
    steps = re.findall(r"canary step \d: declared (\d+)%, observed ([\d.]+)% at the servers", summary)
    assert len(steps) == 2, summary
    for declared, observed in steps:
        assert abs(float(observed) - float(declared)) <= SPLIT_TOLERANCE * 100, steps
    assert re.search(r"Live traffic through the gateway: \d+ requests, \d+ failed", summary)
    leftovers = subprocess.run(["pgrep", "-f", "mlserver start"], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == "", "a model server outlived the demo"
    registry = subprocess.run(
        ["pgrep", "-f", "mlflow server.*modeldeploy-demo-"], capture_output=True, text=True, check=False
    )
    assert registry.stdout.strip() == "", "the demo's MLflow server outlived it"
