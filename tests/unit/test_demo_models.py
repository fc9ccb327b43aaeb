"""The demo's models: trained at start, the better one better and the corrupted one worst."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeldeploy_dev.demo.models import corrupt, load, path_for, train_all, uri_for
from modeldeploy_dev.demo.server import Scoring

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    store = tmp_path_factory.mktemp("models")
    _, accuracies = train_all(store)
    return store, accuracies


def test_training_orders_accuracy_v2_above_v1_above_v3_with_clear_margins(
    trained: tuple[Path, dict[str, float]],
) -> None:
    _, accuracy = trained
    assert accuracy["2.0.0"] > 0.94
    assert 0.65 < accuracy["1.0.0"] < accuracy["2.0.0"] - 0.1
    assert accuracy["3.0.0"] < accuracy["1.0.0"] - 0.1  # the comparison with either champion fails


def test_corruption_swaps_two_pairs_of_digits_and_nothing_else() -> None:
    assert corrupt(list(range(10))) == [0, 1, 2, 5, 9, 3, 6, 7, 8, 4]


def test_model_uri_names_a_file_in_the_store(trained: tuple[Path, dict[str, float]]) -> None:
    store, _ = trained
    assert path_for(store, uri_for("2.0.0")).exists()
    with pytest.raises(ValueError):
        path_for(store, "s3://models/digits/../../etc/passwd")


def test_server_counts_requests_and_scores_only_labelled_ones(trained: tuple[Path, dict[str, float]]) -> None:
    store, _ = trained
    scoring = Scoring(load(path_for(store, uri_for("2.0.0"))), "demo", "digits-2")
    zero = [0.0] * 64
    status, answer = scoring.answer(json.dumps({"features": zero}).encode())
    assert status == 200 and answer["revision"] == "digits-2"
    scoring.answer(json.dumps({"features": zero, "label": answer["prediction"]}).encode())
    scoring.answer(json.dumps({"features": zero, "label": (answer["prediction"] + 1) % 10}).encode())
    assert scoring.answer(b'{"features": [1]}')[0] == 400
    metrics = scoring.metrics().decode()
    labels = 'namespace="demo",revision="digits-2"'
    assert f'model_requests_total{{code="200",{labels}}} 3.0' in metrics.replace(
        f'{labels},code="200"', f'code="200",{labels}'
    )
    assert f"model_labelled_predictions_total{{{labels}}} 2.0" in metrics
    assert f"model_correct_predictions_total{{{labels}}} 1.0" in metrics
    assert 'code="500"' in metrics  # present at 0 from the start: the error rate reads 0, not "no data"
