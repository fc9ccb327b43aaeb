"""Chart notification targets: URLs in a Secret, mounted; the config names the files; the operator reads."""

from __future__ import annotations

from pathlib import Path

import yaml
from helm_chart import find, one, refused, render

from modeldeploy.analysis.outbound import Outbound
from modeldeploy.notify.outbox import Outbox
from modeldeploy.providers import OperatorConfig

SLACK = "slack://TOKENA/TOKENB/TOKENC/#ml-rollouts"
TARGETS = (
    "--set",
    "notificationTargets[0].name=team-slack",
    "--set",
    f"notificationTargets[0].urls[0]={SLACK}",
    "--set",
    "notificationTargets[0].namespaces={risk}",
    "--set",
    "cloudEvents.sink=http://broker.eventing.svc.cluster.local/default",
    "--set",
    "cloudEvents.mode=binary",
)


def test_urls_live_in_a_secret_and_the_config_only_names_the_mounted_file(tmp_path: Path) -> None:
    docs = render(*TARGETS)
    secret = one(docs, "Secret", "md-modeldeploy-notifications")
    assert secret["stringData"]["team-slack"].strip() == SLACK
    config_map = one(docs, "ConfigMap", "md-modeldeploy-config")
    assert SLACK not in config_map["data"]["config.yaml"]
    config = OperatorConfig.model_validate(yaml.safe_load(config_map["data"]["config.yaml"]))
    target = config.notification_targets[0]
    assert (target.name, target.urls_file, target.namespaces) == (
        "team-slack",
        "/etc/modeldeploy/notifications/team-slack",
        ("risk",),
    )
    assert config.cloud_events is not None and config.cloud_events.mode == "binary"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["notifications"] == "/etc/modeldeploy/notifications"
    volume = next(v for v in pod["volumes"] if v["name"] == "notifications")
    assert volume["secret"]["secretName"] == "md-modeldeploy-notifications"

    # The operator starts from exactly this: the Secret's key as the mounted file.
    (tmp_path / "team-slack").write_text(secret["stringData"]["team-slack"])
    local = config.model_copy(
        update={
            "notification_targets": (target.model_copy(update={"urls_file": str(tmp_path / "team-slack")}),)
        }
    )
    assert local.notification_targets[0].read_urls() == (SLACK,)
    box = Outbox(local, Outbound())  # Apprise accepts the URL
    assert box.targets_for("risk") == frozenset({"team-slack"})
    assert box.targets_for("payments") == frozenset()


def test_no_targets_no_secret_and_no_mount() -> None:
    docs = render()
    assert find(docs, "Secret", "md-modeldeploy-notifications") == []
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert all(v["name"] != "notifications" for v in pod["volumes"])


def test_the_sink_name_is_reserved_and_a_target_needs_urls() -> None:
    assert "not" in refused(
        "--set", "notificationTargets[0].name=cloudevents", "--set", "notificationTargets[0].urls[0]=x"
    )
    assert "urls" in refused("--set", "notificationTargets[0].name=team")
