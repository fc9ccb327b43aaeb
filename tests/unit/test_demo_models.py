"""The demo's models: the better one better and the corrupted one worst."""

from __future__ import annotations

import pytest

from modeldeploy_dev.demo.models import corrupt, train_all

pytestmark = pytest.mark.unit


def test_training_orders_accuracy_v2_above_v1_above_v3_with_clear_margins() -> None:
    _, accuracy = train_all()
    assert accuracy["2.0.0"] > 0.94
    assert 0.65 < accuracy["1.0.0"] < accuracy["2.0.0"] - 0.1
    assert accuracy["3.0.0"] < accuracy["1.0.0"] - 0.1  # the comparison with either champion fails


def test_corruption_swaps_two_pairs_of_digits_and_nothing_else() -> None:
    assert corrupt(list(range(10))) == [0, 1, 2, 5, 9, 3, 6, 7, 8, 4]
