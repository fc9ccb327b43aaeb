"""`modeldeploy lint FILE...`: offline validation with the admission messages, file by file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modeldeploy.cli.lint import lint_files
from modeldeploy.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
INVALID = ROOT / "tests" / "manifests" / "invalid"


def test_every_example_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", *map(str, EXAMPLES)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{len(EXAMPLES)} ModelDeployment manifest(s) valid" in err


def test_a_bad_manifest_fails_naming_the_file_and_field(capsys: pytest.CaptureFixture[str]) -> None:
    bad = INVALID / "canary-weight-over-100.yaml"
    assert main(["lint", str(EXAMPLES[0]), str(bad)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out, "no problem printed"
    assert all(line.startswith(f"{bad}: spec.strategy.canary.steps[") for line in out), out
    assert "weight" in out[0] and "less than or equal to 100" in out[0]


def test_multi_document_files_name_the_document_and_skip_other_kinds(tmp_path: Path) -> None:
    good = yaml.safe_load((ROOT / "examples" / "minimal.yaml").read_text())
    bad = yaml.safe_load((ROOT / "examples" / "minimal.yaml").read_text())
    bad["spec"]["replicas"] = 0
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all([config_map, good, bad]))
    report = lint_files([str(path)])
    assert report.checked == 2
    assert [str(f) for f in report.findings] == [
        f"{path}[3]: spec.replicas: Invalid value: 0: "
        "spec.replicas in body should be greater than or equal to 1"
    ]


def test_unreadable_and_malformed_files_are_reported_not_raised(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed\n")
    report = lint_files([str(tmp_path / "missing.yaml"), str(broken)])
    messages = [str(f) for f in report.findings]
    assert messages[0].startswith(f"{tmp_path / 'missing.yaml'}: cannot read")
    assert messages[1].startswith(f"{broken}: not valid YAML")


def test_json_output_lists_findings(capsys: pytest.CaptureFixture[str]) -> None:
    bad = INVALID / "replicas-zero.yaml"
    assert main(["lint", "-o", "json", str(bad)]) == 1
    findings = json.loads(capsys.readouterr().out)
    assert findings[0]["file"] == str(bad) and findings[0]["path"] == "spec.replicas"
