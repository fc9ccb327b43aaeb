"""The demo's models in a real MLflow registry: each version logged from its training run, an alias moved.

The three recipes of ``models`` are trained here, logged with ``mlflow.sklearn``
(parameters, held-out accuracy, the dataset, a description) and registered as
versions 1, 2 and 3 of ``digits-classifier``, in that order. The model is saved
as a plain pickle, which the model server image's scikit-learn runtime loads
(MLflow's default, skops, it does not). The ModelDeployment follows the
``@challenger`` alias; the demo moves it with MLflow's own client, as a team
would, and modeldeploy rolls out whatever it points at, then writes the outcome
back: tags on each version, and ``@production`` on the promoted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modeldeploy_dev.demo import models
from modeldeploy_dev.model_registry import MlflowServer

MODEL = "digits-classifier"
ALIAS = "challenger"
PROMOTION_ALIAS = "production"
PROVIDER = "mlflow"


@dataclass(frozen=True)
class Registered:
    """The registry's version of each recipe, and the held-out rows and accuracies."""

    versions: dict[str, str]  # recipe (1.0.0, ...) -> registry version (1, ...)
    held_out: models.HeldOut
    accuracies: dict[str, float]  # registry version -> held-out accuracy


def register_digits(server: MlflowServer) -> Registered:
    mlflow = server.log_to("digits")
    client = server.client()
    train_features, test_features, train_labels, test_labels = models.split()
    held_out = models.held_out_set(test_features, test_labels)
    dataset = mlflow.data.from_numpy(train_features, targets=train_labels, name="load_digits")
    versions: dict[str, str] = {}
    accuracies: dict[str, float] = {}
    for recipe in models.VERSIONS:
        with mlflow.start_run(run_name=f"digits {recipe}"):
            model = models.train(recipe, train_features, train_labels)
            accuracy = models.accuracy(model, held_out)
            mlflow.log_input(dataset, context="training")
            mlflow.log_params({"recipe": recipe, "corrupted_labels": recipe == "3.0.0"})
            mlflow.log_metric("held_out_accuracy", accuracy)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=MODEL,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
                pip_requirements=["scikit-learn"],
            )
        version = str(info.registered_model_version)
        client.update_model_version(MODEL, version, description=models.DESCRIPTIONS[recipe])
        versions[recipe] = version
        accuracies[version] = accuracy
    return Registered(versions, held_out, accuracies)


def move_alias(server: MlflowServer, version: str) -> None:
    server.client().set_registered_model_alias(MODEL, ALIAS, version)


def aliases(server: MlflowServer) -> dict[str, str]:
    """Alias -> version, as the registry has them now."""
    found: Any = server.client().get_registered_model(MODEL)
    return dict(found.aliases)


def outcome_tags(server: MlflowServer, version: str) -> dict[str, str]:
    """The ``modeldeploy.*`` tags the operator wrote on a version."""
    tags = dict(server.client().get_model_version(MODEL, version).tags)
    return {key: value for key, value in tags.items() if key.startswith("modeldeploy.")}
