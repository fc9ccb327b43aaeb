"""The baseline's objects: what the operator itself ends up creating for one ModelDeployment."""

from __future__ import annotations

from modeldeploy_dev.bench.convergence import final_objects


def test_the_baseline_writes_the_operators_own_objects_at_rest_without_an_owner() -> None:
    doc = {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "a0001", "namespace": "bench"},
        "spec": {
            "model": {"name": "bench-model", "version": "1.0.0"},
            "runtime": {"image": "bench:1"},
            "replicas": 2,
            "traffic": {"router": "service"},
        },
    }
    objects = final_objects(doc)
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    (deployment,) = (o for o in objects if o["kind"] == "Deployment")
    assert kinds == [
        ("Deployment", deployment["metadata"]["name"]),
        ("Service", "a0001"),
        ("Service", "a0001-candidate"),
    ]
    assert deployment["spec"]["replicas"] == 2
    assert all("ownerReferences" not in o["metadata"] for o in objects)
