"""The plugin's tables: `list`, `history` and `card`, built from raw objects (pure, clock passed in)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from modeldeploy.cli.output import age, table


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def list_table(objects: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """NAMESPACE NAME PHASE STABLE CANDIDATE STAGE WEIGHT AGE, one row per ModelDeployment."""
    rows = []
    for obj in sorted(
        objects,
        key=lambda o: (_dict(o.get("metadata")).get("namespace", ""), _dict(o.get("metadata"))["name"]),
    ):
        meta, status = _dict(obj.get("metadata")), _dict(obj.get("status"))
        stable, candidate = _dict(status.get("stable")), _dict(status.get("candidate"))
        stage = str(candidate.get("stage", "-")) if candidate else "-"
        steps = _dict(_dict(_dict(obj.get("spec")).get("strategy")).get("canary")).get("steps") or []
        if stage == "Canary" and isinstance(candidate.get("step"), int) and steps:
            stage += f" {candidate['step'] + 1}/{len(steps)}"
        rows.append(
            [
                str(meta.get("namespace", "")),
                str(meta.get("name", "")),
                str(status.get("phase") or "-"),
                str(stable.get("version", "-")) if stable else "-",
                str(candidate.get("version", "-")) if candidate else "-",
                stage,
                f"{candidate.get('weight', 0)}%" if candidate else "-",
                age(meta.get("creationTimestamp"), now),
            ]
        )
    headers = ["NAMESPACE", "NAME", "PHASE", "STABLE", "CANDIDATE", "STAGE", "WEIGHT", "AGE"]
    return table(headers, rows)


def history_table(obj: Mapping[str, Any]) -> str:
    """REVISION VERSION OUTCOME REASON AT MESSAGE, oldest first as status.history keeps it."""
    entries = [_dict(e) for e in _dict(obj.get("status")).get("history") or []]
    rows = [
        [
            str(e.get("revision", "")),
            str(e.get("version", "")),
            str(e.get("outcome", "")),
            str(e.get("reason", "")),
            str(e.get("at", "")),
            str(e.get("message") or ""),
        ]
        for e in entries
    ]
    return table(["REVISION", "VERSION", "OUTCOME", "REASON", "AT", "MESSAGE"], rows)


def revision_model(obj: Mapping[str, Any], role: str) -> dict[str, Any] | None:
    """The model spec (name, version, uri, card) of the stable or candidate revision, if known.

    The spec describes the revision it asks for; an older revision (the stable
    one during a rollout, or an undo target) is described by the copy of its
    model spec the operator keeps in ``status.operatorState.revisions``.
    """
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    current = _dict(status.get(role))
    if not current:
        return None
    model = _dict(spec.get("model"))
    if model and str(model.get("version")) == str(current.get("version")):
        return model
    sources = _dict(_dict(status.get("operatorState")).get("revisions"))
    kept = _dict(_dict(sources.get(str(current.get("revision")))).get("model"))
    return kept or {"version": current.get("version")}


def card_data(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``{stable: {...}, candidate: {...}}``: revision, model name, version, uri and card of each."""
    result: dict[str, Any] = {}
    status = _dict(obj.get("status"))
    registry = _dict(status.get("registry"))
    for role in ("stable", "candidate"):
        model = revision_model(obj, role)
        if model is not None:
            result[role] = {"revision": _dict(status.get(role)).get("revision"), **model}
            version = str(_dict(status.get(role)).get("version"))
            card = registry.get("card") if str(registry.get("version")) == version else None
            card = card or _dict(registry.get("cards")).get(version)
            if card:
                selector = f"@{registry['alias']}" if registry.get("alias") else f"/{version}"
                result[role]["registry"] = {
                    **_dict(card),
                    "reference": f"{registry.get('provider')}:{registry.get('model')}{selector}",
                }
    return result


def card_table(obj: Mapping[str, Any]) -> str:
    """The model cards of stable and candidate side by side, one field a row."""
    data = card_data(obj)
    roles = [role for role in ("stable", "candidate") if role in data]
    if not roles:
        return "no revision yet\n"
    fields: list[tuple[str, Any]] = [
        ("revision", lambda m: m.get("revision")),
        ("model", lambda m: m.get("name")),
        ("version", lambda m: m.get("version")),
        ("uri", lambda m: m.get("uri")),
        ("owner", lambda m: _dict(m.get("card")).get("owner")),
        ("description", lambda m: _dict(m.get("card")).get("description")),
        ("trainingData", lambda m: _dict(m.get("card")).get("trainingData")),
    ]
    metric_names = sorted({k for role in roles for k in _dict(_dict(data[role].get("card")).get("metrics"))})
    fields += [
        (f"metrics.{name}", lambda m, n=name: _dict(_dict(m.get("card")).get("metrics")).get(n))
        for name in metric_names
    ]
    if any("registry" in data[role] for role in roles):
        fields += [
            ("registry", lambda m: _dict(m.get("registry")).get("reference")),
            ("registry.source", lambda m: _dict(m.get("registry")).get("source")),
            ("registry.description", lambda m: _dict(m.get("registry")).get("description")),
            ("run", lambda m: _dict(m.get("registry")).get("runId")),
            ("run.datasets", lambda m: ", ".join(_dict(m.get("registry")).get("datasets") or []) or None),
        ]
        for group in ("metrics", "params"):
            names = sorted({k for role in roles for k in _dict(_dict(data[role].get("registry")).get(group))})
            fields += [
                (
                    f"run.{group}.{name}",
                    lambda m, g=group, n=name: _dict(_dict(m.get("registry")).get(g)).get(n),
                )
                for name in names
            ]
    rows = []
    for label, read in fields:
        values = [read(data[role]) for role in roles]
        rows.append([label, *("-" if v is None else str(v) for v in values)])
    return table(["FIELD", *(role.upper() for role in roles)], rows)
