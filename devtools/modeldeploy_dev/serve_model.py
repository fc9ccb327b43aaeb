"""The model server image's entrypoint: find the model the pod was given, then start MLServer on it.

It runs inside the image (``/opt/runtime/serve_model.py``, standard library only)
and reads what the operator sets in every model pod:

- ``MODEL_URI`` of the form ``mlflow-artifacts:/<path>``: the artifact location
  MLflow's registry answers for a model version (``get-download-uri``) when its
  server proxies artifacts. With ``MLFLOW_ARTIFACTS_URL`` (the server's
  ``.../api/2.0/mlflow-artifacts/artifacts``, set in ``spec.runtime.env``), the
  pod reads the version's ``MLmodel``, fetches the scikit-learn flavor's file,
  and serves it. Only the ``pickle`` and ``cloudpickle`` formats load here
  (MLServer's scikit-learn runtime uses joblib); any other is an error that
  names the format.
- Otherwise ``/models/$MODEL_VERSION``, one of the demo's models trained into
  the image at build time.

Either way the model is served as ``digits`` with version ``MODEL_VERSION``, by
the image's labelled runtime (``digits_runtime.LabelledSKLearnModel``). A model
that cannot be fetched stops the container with the reason on stderr: the pod
never turns Ready, and the operator never routes to it.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

PREFIX = "mlflow-artifacts:/"
LOADABLE = ("pickle", "cloudpickle")
BAKED = Path("/models")
FETCHED = Path("/tmp/model")
TIMEOUT = 30.0


class ModelError(Exception):
    """The pod cannot serve the model it was given; the message says why and what to set."""


def sklearn_flavor(mlmodel: str) -> tuple[str, str]:
    """The file holding the model and its serialization format, from an MLmodel file's
    ``flavors: sklearn:`` section (MLflow writes it with ``yaml.safe_dump``; read by line, as
    the image has no YAML parser)."""
    fields: dict[str, str] = {}
    section: list[str] = []
    for line in mlmodel.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        key, _, value = line.strip().partition(":")
        section = [*section[:depth], key]
        if section[:2] == ["flavors", "sklearn"] and depth == 2:
            fields[key] = value.strip().strip("'\"")
    if "pickled_model" not in fields:
        raise ModelError("the model's MLmodel has no sklearn flavor: log it with mlflow.sklearn")
    return fields["pickled_model"], fields.get("serialization_format", "cloudpickle")


def fetch(url: str) -> bytes:
    """GET through no proxy: the registry is inside the node's own network."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        raise ModelError(f"GET {url} answered {error.code}") from error
    except (OSError, ValueError) as error:
        raise ModelError(f"GET {url} failed: {error}") from error


def settings(version: str) -> dict[str, object]:
    return {
        "name": "digits",
        "implementation": "digits_runtime.LabelledSKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": version},
    }


def model_directory(env: Mapping[str, str], baked: Path = BAKED, fetched: Path = FETCHED) -> Path:
    """The directory MLServer serves for this pod's environment, fetching the model first if
    its URI is an MLflow artifact."""
    version = env.get("MODEL_VERSION", "")
    if not version:
        raise ModelError("MODEL_VERSION is empty: it names the version to serve")
    uri = env.get("MODEL_URI", "")
    if not uri.startswith(PREFIX):
        directory = baked / version
        if not (directory / "model-settings.json").is_file():
            raise ModelError(
                f"no model {version} in the image ({directory}), and MODEL_URI {uri!r} is no MLflow artifact"
            )
        return directory
    base = env.get("MLFLOW_ARTIFACTS_URL", "").rstrip("/")
    if not base:
        raise ModelError(
            f"MODEL_URI is {uri}: set MLFLOW_ARTIFACTS_URL (spec.runtime.env) to the registry's "
            "http://<host>:<port>/api/2.0/mlflow-artifacts/artifacts"
        )
    location = f"{base}/{uri[len(PREFIX) :].strip('/')}"
    name, form = sklearn_flavor(fetch(f"{location}/MLmodel").decode())
    if form not in LOADABLE:
        raise ModelError(
            f"the model is saved as {form!r}; this image loads {' or '.join(LOADABLE)} "
            "(mlflow.sklearn.log_model(..., serialization_format='pickle'))"
        )
    directory = fetched / version
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.joblib").write_bytes(fetch(f"{location}/{name}"))
    (directory / "model-settings.json").write_text(json.dumps(settings(version)))
    return directory


def main() -> None:
    try:
        directory = model_directory(os.environ)
    except ModelError as error:
        print(f"serve_model: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"serve_model: serving {directory} (MODEL_URI {os.environ.get('MODEL_URI', '')!r})", flush=True)
    os.execvp("mlserver", ["mlserver", "start", str(directory)])


if __name__ == "__main__":
    main()
