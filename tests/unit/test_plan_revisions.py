"""Revision names: stable for the same model and runtime, new for any change to them, valid label values."""

from __future__ import annotations

import re
from typing import Any

from planner_world import spec

from modeldeploy.api import parse_spec
from modeldeploy.plan.revisions import revision_name, revision_source

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def name_of(raw: dict[str, Any], name: str = "fraud") -> str:
    parsed = parse_spec(raw)
    return revision_name(name, revision_source(parsed.model, parsed.runtime))


def test_the_name_of_a_revision_does_not_change_between_operator_releases() -> None:
    """An upgraded operator computing other names would start a rollout of every ModelDeployment."""
    assert name_of(spec("3.2.0")) == "fraud-3-2-0-facf4"


def test_editing_the_model_card_is_not_a_new_revision_but_the_model_or_runtime_is() -> None:
    base = spec("3.2.0")
    carded = {**base, "model": {**base["model"], "card": {"owner": "risk-ml@example.com"}}}
    recarded = {**base, "model": {**base["model"], "card": {"owner": "someone-else@example.com"}}}
    assert name_of(carded) == name_of(recarded) == name_of(base)
    moved = {**base, "model": {**base["model"], "uri": "s3://m/elsewhere"}}
    reimaged = {**base, "runtime": {**base["runtime"], "image": "ghcr.io/acme/server:2"}}
    assert len({name_of(base), name_of(moved), name_of(reimaged)}) == 3


def test_field_order_in_the_manifest_does_not_matter() -> None:
    base = spec("3.2.0")
    reordered = {**base, "model": dict(reversed(list(base["model"].items())))}
    assert name_of(reordered) == name_of(base)


def test_versions_become_lowercase_dns_labels_within_63_characters() -> None:
    assert name_of(spec("3.2.0-RC1+Build.7")).startswith("fraud-3-2-0-rc1-build-7-")
    long_name = "a-model-deployment-named-at-the-40-limit"  # admission allows 40
    for version in ("1.0.0", "2026.11.22-" + "x" * 52, "V1"):
        name = name_of(spec(version), long_name)
        assert len(name) <= 63 and DNS_LABEL.match(name), name
        assert name.startswith(long_name + "-")
