"""The names under which the API server knows ModelDeployments (one place, imported everywhere)."""

from __future__ import annotations

GROUP = "modeldeploy.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ("mdep", "md")
CATEGORIES = ("modeldeploy",)
CRD_NAME = f"{PLURAL}.{GROUP}"

MAX_NAME_LENGTH = 40
"""Longest object name: children are named ``<name>-candidate``, ``<name>-retrain-<n>``,
``<name>-<version>-<hash>``, and Service names and label values stop at 63 characters."""
