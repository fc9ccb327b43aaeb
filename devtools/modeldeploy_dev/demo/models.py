"""The demo's three model versions, trained at start on a dataset that ships inside scikit-learn.

scikit-learn's handwritten digits (8x8 pixels, 10 classes, 1797 rows) are split
once, with a fixed seed, into a training set and a held-out set; the held-out
rows are what the load generator later replays, each with its true label.

- 1.0.0, the champion: logistic regression on 13 of the 64 pixels, few
  iterations. Decent, not great (~0.78 held-out accuracy).
- 2.0.0, a better challenger: the same model on every pixel, trained to
  convergence (~0.97).
- 3.0.0, the same recipe as 2.0.0 trained on corrupted labels: a labelling bug
  swapped digits 3<->5 and 4<->9 in its training data. It answers every request
  quickly and without an error, and is wrong far more often (~0.58): only an
  accuracy metric can catch it.

The demo registers the three in an MLflow registry (``demo.registry``), whose
artifacts the model pods fetch. The model server image also trains them at build
time with its own scikit-learn (``images.model_server_image``), for the tests that
pin a version by hand: a pod serves that copy when its ``MODEL_URI`` is no MLflow
artifact.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

SEED = 0
HELD_OUT_FRACTION = 0.4
FEW_PIXELS = list(range(0, 64, 5))
SWAPPED_LABELS = {3: 5, 5: 3, 4: 9, 9: 4}
VERSIONS = ("1.0.0", "2.0.0", "3.0.0")
DESCRIPTIONS = {
    "1.0.0": "logistic regression on 13 of 64 pixels (the champion)",
    "2.0.0": "logistic regression on all 64 pixels (a better challenger)",
    "3.0.0": "2.0.0's recipe trained on corrupted labels (3<->5, 4<->9 swapped)",
}


class Classifier(Protocol):
    def predict(self, rows: Any) -> Any: ...


@dataclass(frozen=True)
class HeldOut:
    """Labelled rows no model was trained on: the load generator's replay."""

    rows: list[list[float]]
    labels: list[int]


def split() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    features, labels = load_digits(return_X_y=True)
    return tuple(
        train_test_split(features, labels, test_size=HELD_OUT_FRACTION, random_state=SEED, stratify=labels)
    )


def corrupt(labels: Sequence[int]) -> list[int]:
    """The labelling bug of version 3.0.0: two pairs of digits swapped."""
    return [SWAPPED_LABELS.get(int(label), int(label)) for label in labels]


def train(version: str, features: Any, labels: Any) -> Classifier:
    from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1.0.0 stops before convergence on purpose
        if version == "1.0.0":
            few = ColumnTransformer([("pixels", "passthrough", FEW_PIXELS)])
            model = make_pipeline(few, StandardScaler(), LogisticRegression(max_iter=50))
            return model.fit(features, labels)  # type: ignore[no-any-return]
        if version == "2.0.0":
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            return model.fit(features, labels)  # type: ignore[no-any-return]
        if version == "3.0.0":
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            return model.fit(features, corrupt(labels))  # type: ignore[no-any-return]
    raise ValueError(f"no demo model has version {version!r}")


def accuracy(model: Classifier, held_out: HeldOut) -> float:
    predictions = model.predict(held_out.rows)
    correct = sum(int(p) == label for p, label in zip(predictions, held_out.labels, strict=True))
    return correct / len(held_out.labels)


def held_out_set(features: Any, labels: Any) -> HeldOut:
    """The split's held-out part as plain lists, for the load generator and accuracy."""
    return HeldOut(rows=[[float(v) for v in row] for row in features], labels=[int(v) for v in labels])


def train_all() -> tuple[HeldOut, dict[str, float]]:
    """Train every version here, as the model server image does at build: the held-out set and
    each version's accuracy on it (what the summary quotes)."""
    train_features, test_features, train_labels, test_labels = split()
    held_out = held_out_set(test_features, test_labels)
    accuracies = {
        version: accuracy(train(version, train_features, train_labels), held_out) for version in VERSIONS
    }
    return held_out, accuracies
