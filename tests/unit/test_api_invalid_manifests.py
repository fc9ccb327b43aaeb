"""The invalid-manifest corpus: the models refuse each file with the message admission gives.

Each file under tests/manifests/invalid starts with ``# expect: <text>``, a piece of
the API server's error that names the offending field. The integration tier
applies the same files to a real API server (tests/integration/test_api_admission.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modeldeploy.api import InvalidManifestError, lint_manifest, parse_manifest

CORPUS = sorted((Path(__file__).resolve().parents[1] / "manifests" / "invalid").glob("*.yaml"))


def expectation(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: <message>'"
    return first.removeprefix("# expect: ")


def test_corpus_holds_at_least_thirty_manifests() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_invalid_manifest_is_refused_naming_the_field(path: Path) -> None:
    expected = expectation(path)
    problems = [str(problem) for problem in lint_manifest(yaml.safe_load(path.read_text()))]
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_invalid_manifest_fails_to_parse(path: Path) -> None:
    with pytest.raises(InvalidManifestError):
        parse_manifest(yaml.safe_load(path.read_text()))
