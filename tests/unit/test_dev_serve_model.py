"""The model server image's entrypoint: which model a pod serves, fetched over real HTTP from an
artifact store laid out as MLflow's artifact proxy lays it out."""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modeldeploy_dev.serve_model import ModelError, model_directory, sklearn_flavor

# What mlflow.sklearn.log_model(..., serialization_format="pickle") wrote with MLflow 3.17.
MLMODEL = """\
artifact_path: mlflow-artifacts:/0/models/m-d128/artifacts
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: pickle
    sklearn_version: 1.9.1
mlflow_version: 3.17.2
model_id: m-d128
"""
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
URI = "mlflow-artifacts:/0/models/m-d128/artifacts"


@contextmanager
def artifact_store(files: dict[str, bytes]) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server answering GET <ARTIFACTS>/<path> from ``files``; yields its base URL and the
    paths asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = files.get(self.path.removeprefix(ARTIFACTS + "/"))
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{ARTIFACTS}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_the_sklearn_flavor_names_the_file_and_format_not_the_pyfunc_one() -> None:
    assert sklearn_flavor(MLMODEL) == ("model.pkl", "pickle")
    skops = MLMODEL.replace("pickled_model: model.pkl", "pickled_model: model.skops").replace(
        "serialization_format: pickle", "serialization_format: skops"
    )
    assert sklearn_flavor(skops) == ("model.skops", "skops")
    with pytest.raises(ModelError, match="no sklearn flavor"):
        sklearn_flavor(MLMODEL.replace("  sklearn:", "  onnx:"))


def test_an_mlflow_artifact_is_fetched_and_served_under_the_pods_version(tmp_path: Path) -> None:
    model = pickle.dumps({"a": "model"})
    files = {
        "0/models/m-d128/artifacts/MLmodel": MLMODEL.encode(),
        "0/models/m-d128/artifacts/model.pkl": model,
    }
    with artifact_store(files) as (base, asked):
        env = {"MODEL_VERSION": "2", "MODEL_URI": URI, "MLFLOW_ARTIFACTS_URL": base + "/"}
        directory = model_directory(env, baked=tmp_path / "baked", fetched=tmp_path / "fetched")
    assert directory == tmp_path / "fetched" / "2"
    assert (directory / "model.joblib").read_bytes() == model
    settings = json.loads((directory / "model-settings.json").read_text())
    assert settings["name"] == "digits" and settings["parameters"] == {
        "uri": "./model.joblib",
        "version": "2",
    }
    assert asked == [
        f"{ARTIFACTS}/0/models/m-d128/artifacts/MLmodel",
        f"{ARTIFACTS}/0/models/m-d128/artifacts/model.pkl",
    ]


def test_a_format_joblib_cannot_load_is_refused_before_any_download(tmp_path: Path) -> None:
    skops = MLMODEL.replace("serialization_format: pickle", "serialization_format: skops")
    with artifact_store({"0/models/m-d128/artifacts/MLmodel": skops.encode()}) as (base, asked):
        env = {"MODEL_VERSION": "2", "MODEL_URI": URI, "MLFLOW_ARTIFACTS_URL": base}
        with pytest.raises(ModelError, match=r"saved as 'skops'.*serialization_format='pickle'"):
            model_directory(env, baked=tmp_path, fetched=tmp_path / "fetched")
    assert len(asked) == 1 and not (tmp_path / "fetched").exists()


def test_a_missing_artifact_or_address_is_named(tmp_path: Path) -> None:
    with artifact_store({}) as (base, _):
        env = {"MODEL_VERSION": "2", "MODEL_URI": URI, "MLFLOW_ARTIFACTS_URL": base}
        with pytest.raises(ModelError, match="MLmodel answered 404"):
            model_directory(env, baked=tmp_path, fetched=tmp_path / "fetched")
    with pytest.raises(ModelError, match=r"set MLFLOW_ARTIFACTS_URL \(spec.runtime.env\)"):
        model_directory({"MODEL_VERSION": "2", "MODEL_URI": URI}, baked=tmp_path, fetched=tmp_path)


def test_any_other_uri_serves_the_model_baked_into_the_image(tmp_path: Path) -> None:
    (tmp_path / "1.0.0").mkdir()
    (tmp_path / "1.0.0" / "model-settings.json").write_text("{}")
    env = {"MODEL_VERSION": "1.0.0", "MODEL_URI": "s3://models/digits/1.0.0"}
    assert model_directory(env, baked=tmp_path, fetched=tmp_path / "fetched") == tmp_path / "1.0.0"
    with pytest.raises(ModelError, match=r"no model 9\.9\.9 in the image"):
        model_directory({**env, "MODEL_VERSION": "9.9.9"}, baked=tmp_path, fetched=tmp_path / "fetched")
    with pytest.raises(ModelError, match="MODEL_VERSION is empty"):
        model_directory({"MODEL_URI": URI}, baked=tmp_path, fetched=tmp_path)
