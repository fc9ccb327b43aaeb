"""`modeldeploy lint FILE...`: the admission and operator checks, offline, on manifests in files.

Uses :func:`modeldeploy.api.lint_manifest`, the same models and messages as
the CRD's CEL rules and the operator, so a problem reads the same here as in
``kubectl apply``'s refusal. Files may hold several YAML documents; documents
of other kinds are skipped (a Git directory mixes kinds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from modeldeploy.api import KIND, lint_manifest


@dataclass(frozen=True)
class Finding:
    """One problem: in which file (and document, counted from 1, when a file holds several), where, what."""

    file: str
    document: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.document is None else f"{self.file}[{self.document}]"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    checked: int
    """How many ModelDeployment documents were checked."""


def lint_files(paths: Iterable[str]) -> Report:
    findings: list[Finding] = []
    checked = 0
    for name in paths:
        try:
            documents = [d for d in yaml.safe_load_all(Path(name).read_text()) if d is not None]
        except OSError as error:
            findings.append(Finding(name, None, "", f"cannot read: {error.strerror or error}"))
            continue
        except yaml.YAMLError as error:
            findings.append(Finding(name, None, "", f"not valid YAML: {error}".replace("\n", " ")))
            continue
        several = len(documents) > 1
        for index, document in enumerate(documents, start=1):
            number = index if several else None
            if not isinstance(document, dict):
                findings.append(Finding(name, number, "", "not a Kubernetes object (a YAML mapping)"))
                continue
            if document.get("kind") != KIND:
                continue
            checked += 1
            findings += [Finding(name, number, p.path, p.message) for p in lint_manifest(document)]
    return Report(tuple(findings), checked)
