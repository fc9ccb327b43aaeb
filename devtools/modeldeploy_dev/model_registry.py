"""A real MLflow model registry: ``mlflow server`` with SQLite and a local artifact root.

The integration tests (and anyone trying spec.model.registry by hand) use it
the way ML teams use theirs: scikit-learn models logged with ``mlflow.sklearn``
from training runs (parameters, metrics, the dataset), registered under one
name, and aliases such as ``@challenger`` moved with MLflow's own client.

Nothing here reaches the internet: the server listens on 127.0.0.1 (the tests)
or on the real node's bridge address (the demo, whose model pods fetch their
models from it), and MLflow's telemetry is turned off for the server and for
this process.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeldeploy_dev.cluster import free_port
from modeldeploy_dev.processes import Process, ProcessTable, StartupError, http_ok, log_tail

QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
"""No usage reports from the server or the client: the machine talks to nothing outside."""
NAME = "mlflow-server"


@dataclass
class MlflowServer:
    """``mlflow server`` over ``directory`` (mlflow.db and artifacts/), one worker, on 127.0.0.1."""

    directory: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    """Where it listens: 127.0.0.1, or the real node's bridge address when pods fetch models from it."""
    serve_artifacts: bool = False
    """Proxy artifacts (``mlflow-artifacts:/`` URIs, fetched over HTTP), instead of handing out
    the local artifact root's ``file://`` paths."""
    started_in: float = 0.0
    """Seconds the last start took until /health answered."""
    running: Process | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.processes = ProcessTable(self.directory)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def artifacts_url(self) -> str:
        """Where a ``mlflow-artifacts:/<path>`` URI is fetched: ``<this>/<path>``."""
        return f"{self.url}/api/2.0/mlflow-artifacts/artifacts"

    def start(self, timeout: float = 180) -> float:
        """Start (or start again, on the same database and port); returns the seconds it took."""
        (self.directory / "artifacts").mkdir(exist_ok=True)
        command = [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.directory / 'mlflow.db'}",
            *(
                ("--serve-artifacts", "--artifacts-destination", (self.directory / "artifacts").as_uri())
                if self.serve_artifacts
                else (
                    "--default-artifact-root",
                    (self.directory / "artifacts").as_uri(),
                    "--no-serve-artifacts",
                )
            ),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        began = time.monotonic()
        self.running = self.processes.start(NAME, command, env={**os.environ, **QUIET})
        deadline = began + timeout
        while time.monotonic() < deadline:
            if not self.running.alive():
                raise StartupError(f"mlflow server exited\n{log_tail(self.running.log)}")
            if http_ok(f"{self.url}/health"):
                self.started_in = time.monotonic() - began
                return self.started_in
            time.sleep(0.2)
        log = self.running.log
        self.stop()
        raise StartupError(f"mlflow server not ready after {timeout:.0f}s\n{log_tail(log)}")

    def stop(self) -> None:
        """Stop the server and every process of its group (its workers)."""
        if self.running is not None:
            self.running = None
            self.processes.stop(NAME, grace=15)

    def client(self) -> Any:
        """MLflow's own client, pointed at this server."""
        os.environ.update(QUIET)
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)

    def log_to(self, experiment: str) -> Any:
        """The ``mlflow`` module, with its runs and registrations going to ``experiment`` here."""
        os.environ.update(QUIET)
        import mlflow
        import mlflow.sklearn

        mlflow.set_tracking_uri(self.url)
        mlflow.set_registry_uri(self.url)
        mlflow.set_experiment(experiment)
        return mlflow


def register_iris_models(server: MlflowServer, name: str, strengths: tuple[float, ...]) -> list[str]:
    """One training run per regularisation strength ``C``: a logistic regression on iris, logged
    with ``mlflow.sklearn`` (params, accuracy, the dataset) and registered as the next version of
    ``name``. Returns the version numbers, in order."""
    from sklearn.datasets import load_iris  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    mlflow = server.log_to(f"train-{name}")
    features, labels = load_iris(return_X_y=True)
    dataset = mlflow.data.from_numpy(features, targets=labels, name="iris")
    versions = []
    for strength in strengths:
        with mlflow.start_run():
            model = LogisticRegression(C=strength, max_iter=500).fit(features, labels)
            mlflow.log_input(dataset, context="training")
            mlflow.log_params({"C": strength, "max_iter": 500})
            mlflow.log_metric("accuracy", float(model.score(features, labels)))
            # Requirements named, not inferred: inference imports the model in a subprocess (slow).
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name=name, pip_requirements=["scikit-learn"]
            )
        versions.append(str(info.registered_model_version))
    return versions
