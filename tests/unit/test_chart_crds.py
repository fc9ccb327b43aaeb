"""The chart ships the ModelDeployment CRD as generated in crds/, byte for byte, and kopf's peering CRDs.

When the first test fails, copy the generated CRD into the chart (`make crds`
should do both):

    cp crds/modeldeployment.yaml charts/modeldeploy/crds/modeldeployment.yaml
"""

from __future__ import annotations

from pathlib import Path

import yaml
from helm_chart import CHART, find, render

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "crds" / "modeldeployment.yaml"
CHART_COPY = CHART / "crds" / "modeldeployment.yaml"


def test_the_chart_copy_of_the_crd_is_the_generated_one() -> None:
    assert CHART_COPY.read_bytes() == GENERATED.read_bytes(), (
        "charts/modeldeploy/crds/modeldeployment.yaml differs from crds/modeldeployment.yaml; run "
        "`cp crds/modeldeployment.yaml charts/modeldeploy/crds/modeldeployment.yaml`"
    )


def test_the_chart_installs_exactly_the_model_deployment_and_kopf_peering_crds() -> None:
    names = {d["metadata"]["name"] for d in find(render(), "CustomResourceDefinition")}
    assert names == {
        "modeldeployments.modeldeploy.io",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }


def test_kopf_peering_crds_are_the_ones_kopf_looks_for() -> None:
    crds = {
        d["metadata"]["name"]: d["spec"]
        for d in yaml.safe_load_all((CHART / "crds" / "kopf-peering.yaml").read_text())
        if d
    }
    for name, scope, kind in [
        ("clusterkopfpeerings.kopf.dev", "Cluster", "ClusterKopfPeering"),
        ("kopfpeerings.kopf.dev", "Namespaced", "KopfPeering"),
    ]:
        spec = crds[name]
        assert (spec["group"], spec["scope"], spec["names"]["kind"]) == ("kopf.dev", scope, kind)
        assert [v["name"] for v in spec["versions"]] == ["v1"]
        # kopf patches .status of the peering object itself: no status subresource.
        assert "subresources" not in spec["versions"][0]
        status = spec["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True
