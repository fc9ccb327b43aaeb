"""MLflow's model registry over its REST API (2.x, 3.x): resolve a version or an alias, write outcomes back.

Reads, per poll of an alias: one ``GET registered-models/alias``. Only when
the answer names another version than the one already known are the run
(``GET runs/get``, for the card's metrics, parameters and datasets) and the
artifact URI (``GET model-versions/get-download-uri``) read too, so a
ModelDeployment at rest costs one small call per poll interval.

Writes (``POST registered-models/alias``, ``POST model-versions/set-tag``) set
a value, so repeating one is harmless; each is retried a few times on a
network error, a 5xx or a 429, and a write that still fails is reported to
the caller, which tries again at the next poll.

Every call goes through :class:`~modeldeploy.analysis.outbound.Outbound`
(the admin's egress rules, a total deadline, a capped body), and errors are
short classes safe for ``status``: never the token, never a body beyond
MLflow's own bounded error code and message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from prometheus_client import Counter

from modeldeploy.analysis.outbound import Outbound, OutboundError
from modeldeploy.api import RegistryCard

API = "/api/2.0/mlflow"
MAX_BODY = 1 << 20
"""An answer larger than 1 MiB (a run with thousands of metrics) is refused, not parsed."""
MAX_ENTRIES = 32
"""Tags, metrics and parameters kept on the card, each (sorted by key, the rest dropped)."""
MAX_TEXT = 256
MAX_KEY = 128
MAX_DESCRIPTION = 2048
MAX_MESSAGE = 200
WRITE_ATTEMPTS = 3

REGISTRY_CALLS = Counter(
    "modeldeploy_registry_calls_total",
    "Calls the operator made to model registries, by endpoint and result (ok or error).",
    ["endpoint", "result"],
)


class RegistryError(Exception):
    """No usable answer. ``reason`` is CamelCase (for a condition); the text is safe for status."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Resolved:
    """One registry version: its number, the URI its server loads, and its card."""

    version: str
    uri: str | None
    card: RegistryCard


@dataclass(frozen=True)
class Report:
    """An outcome to write onto a version: the tags, and whether it takes the promotion alias."""

    version: str
    tags: Mapping[str, str]
    promoted: bool


def _text(value: object, limit: int = MAX_TEXT) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pairs(entries: object, value_key: str = "value") -> dict[str, str]:
    """MLflow's ``[{key, value}]`` lists as a capped dict (first MAX_ENTRIES keys in sorted order)."""
    found: dict[str, str] = {}
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("key"), str) and value_key in entry:
                found[_text(entry["key"], MAX_KEY)] = _text(entry[value_key])
    return {key: found[key] for key in sorted(found)[:MAX_ENTRIES]}


def _metrics(entries: object) -> dict[str, str]:
    return {key: _number(value) for key, value in _pairs(entries).items()}


def _number(text: str) -> str:
    try:
        return _text(f"{float(text):.6g}")
    except ValueError:
        return text


class MlflowRegistry:
    """A client of one MLflow tracking server's registry, under the admin's egress rules."""

    def __init__(
        self,
        address: str,
        outbound: Outbound,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool = True,
        ca_file: str | None = None,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.address = address.rstrip("/")
        self.outbound = outbound
        self.headers = {"Accept": "application/json", **(headers or {})}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.verify = verify
        self.ca_file = ca_file
        self.timeout = timeout
        self.sleep = sleep

    # --- reads -------------------------------------------------------------------

    def resolve(
        self,
        model: str,
        *,
        version: str | None = None,
        alias: str | None = None,
        known: Resolved | None = None,
    ) -> Resolved:
        """The version ``alias`` names (or the pinned ``version``), with its URI and card.

        When it is ``known.version``, ``known`` is returned as it is (one call).
        """
        if alias is not None:
            answer = self._get("registered-models/alias", {"name": model, "alias": alias})
        else:
            answer = self._get("model-versions/get", {"name": model, "version": version or ""})
        found = answer.get("model_version")
        if not isinstance(found, dict) or not str(found.get("version", "")).isdigit():
            raise RegistryError("BadAnswer", "the registry's answer holds no model version")
        number = str(found["version"])
        if known is not None and known.version == number:
            return known
        status = found.get("status", "READY")
        if status != "READY":
            raise RegistryError("VersionNotReady", f"version {number} of {model} is {_text(status, 40)}")
        run_id = found.get("run_id") if isinstance(found.get("run_id"), str) and found.get("run_id") else None
        run: dict[str, Any] = {}
        if run_id:
            run = self._get("runs/get", {"run_id": run_id}).get("run") or {}
        uri = self._download_uri(model, number) or (found.get("source") or None)
        data = run.get("data") or {}
        inputs = (run.get("inputs") or {}).get("dataset_inputs") or []
        datasets = [
            _text(f"{d['dataset'].get('name', '')}@{d['dataset'].get('digest', '')}")
            for d in inputs[:8]
            if isinstance(d, dict) and isinstance(d.get("dataset"), dict)
        ]
        description = found.get("description") or None
        card = RegistryCard(
            description=_text(description, MAX_DESCRIPTION)
            if isinstance(description, str) and description
            else None,
            tags=_pairs(found.get("tags")),
            source=_text(found["source"], 2048) if isinstance(found.get("source"), str) else None,
            run_id=_text(run_id, 64) if run_id else None,
            metrics=_metrics(data.get("metrics")),
            params=_pairs(data.get("params")),
            datasets=datasets,
        )
        return Resolved(number, _text(uri, 2048) if isinstance(uri, str) else None, card)

    def _download_uri(self, model: str, version: str) -> str | None:
        try:
            answer = self._get("model-versions/get-download-uri", {"name": model, "version": version})
        except RegistryError as error:
            if error.reason == "NotFound":
                return None  # an older server: the version's source stands in
            raise
        uri = answer.get("artifact_uri")
        return uri if isinstance(uri, str) and uri else None

    # --- writes ------------------------------------------------------------------

    def write_back(self, model: str, reports: Sequence[Report], alias: str | None) -> None:
        """Tag each reported version, in order; the last promoted one takes ``alias`` (when given)."""
        for report in reports:
            try:
                for key, value in report.tags.items():
                    self._post(
                        "model-versions/set-tag",
                        {"name": model, "version": report.version, "key": key, "value": value},
                    )
            except RegistryError as error:
                if error.reason != "NotFound":
                    raise
                # The version was deleted from the registry: nothing to tag, nothing to retry.
        promoted = [r for r in reports if r.promoted]
        if alias and promoted:
            self._post(
                "registered-models/alias", {"name": model, "alias": alias, "version": promoted[-1].version}
            )

    # --- calls -------------------------------------------------------------------

    def _get(self, endpoint: str, query: Mapping[str, str]) -> dict[str, Any]:
        return self._call("GET", endpoint, f"{self.address}{API}/{endpoint}?{urlencode(query)}", None)

    def _post(self, endpoint: str, body: Mapping[str, str]) -> None:
        data = json.dumps(body).encode()
        for attempt in range(WRITE_ATTEMPTS):
            try:
                self._call("POST", endpoint, f"{self.address}{API}/{endpoint}", data)
                return
            except RegistryError as error:
                if error.reason not in ("Unreachable", "ServerError") or attempt == WRITE_ATTEMPTS - 1:
                    raise
                self.sleep(0.5 * 2**attempt)

    def _call(self, method: str, endpoint: str, url: str, body: bytes | None) -> dict[str, Any]:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            answer = self.outbound.request(
                method,
                url,
                deadline=self.timeout,
                max_body=MAX_BODY,
                headers=headers,
                body=body,
                verify=self.verify,
                ca_file=self.ca_file,
            )
        except OutboundError as error:
            REGISTRY_CALLS.labels(endpoint, "error").inc()
            raise RegistryError("Unreachable", f"cannot reach the registry: {error.kind}") from None
        REGISTRY_CALLS.labels(endpoint, "ok" if answer.ok else "error").inc()
        try:
            parsed = json.loads(answer.body or b"{}")
        except ValueError:
            parsed = None
        if not answer.ok:
            code = parsed.get("error_code") if isinstance(parsed, dict) else None
            detail = parsed.get("message") if isinstance(parsed, dict) else None
            text = f"the registry answered {answer.error_class}"
            if isinstance(code, str):
                text += f" {_text(code, 64)}"
            if isinstance(detail, str):
                text += f": {_text(detail, MAX_MESSAGE)}"
            if answer.status == 404 or code == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError("NotFound", text)
            reason = "ServerError" if answer.status >= 500 or answer.status == 429 else "Refused"
            raise RegistryError(reason, text)
        if not isinstance(parsed, dict):
            raise RegistryError("BadAnswer", "the registry's answer is not a JSON object")
        return parsed
