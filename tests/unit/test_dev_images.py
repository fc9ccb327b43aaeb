"""The real node's image tags: a content hash of exactly what each image is built from."""

from __future__ import annotations

from modeldeploy_dev import images
from modeldeploy_dev.binaries import REPO_ROOT


def test_the_operator_image_is_built_from_what_dockerignore_lets_in() -> None:
    inputs = {path.relative_to(REPO_ROOT).as_posix() for path in images._operator_inputs()}
    assert {"Dockerfile", "pyproject.toml", "README.md", "operator/modeldeploy/__init__.py"} <= inputs
    assert not [p for p in inputs if p.startswith(("tests/", "devtools/", "charts/"))]
    assert not [p for p in inputs if "__pycache__" in p or p.endswith(".pyc") or ".egg-info" in p]


def test_the_tag_changes_with_any_input() -> None:
    base = images.content_hash("base:1", images._operator_inputs())
    assert base == images.content_hash("base:1", images._operator_inputs())
    assert base != images.content_hash("base:2", images._operator_inputs())
    assert len(base) == 16
    assert images.content_hash("a", "bc") != images.content_hash("ab", "c")


def test_the_debian_base_changes_tag_with_its_package_list() -> None:
    assert "--include=python3,python3-venv,python3-pip,python-is-python3" in images.MMDEBSTRAP
    assert images.content_hash(*images.MMDEBSTRAP) != images.content_hash(*images.MMDEBSTRAP[:-1], "trixie")
