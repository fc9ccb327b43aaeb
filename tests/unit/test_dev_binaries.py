"""make binaries' scheduler: the missing Go components build a few at a time, longest first,
kubernetes-node after kubernetes, and a failed build is named with its log's tail."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from modeldeploy_dev import binaries
from modeldeploy_dev.binaries import COMPONENTS, BuildError, BuildTimes, Component


class FakeBuilds:
    """Stands in for one component's `go build`: records starts and ends, never runs go."""

    def __init__(self, fail: str | None = None, log_dir: Path | None = None, hold: bool = False) -> None:
        self.hold = hold
        self.events: list[tuple[str, str]] = []
        self.active = 0
        self.most_active = 0
        self.fail = fail
        self.log_dir = log_dir
        self.lock = threading.Lock()
        self.second_started = threading.Event()
        self.failed = threading.Event()

    def __call__(self, component: Component, log: object) -> BuildTimes:
        with self.lock:
            self.events.append(("start", component.name))
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            if self.active >= 2:
                self.second_started.set()
        if self.hold and component.name == "kubernetes":
            # Holds the first build until a second one runs beside it (and has failed, if one fails).
            self.second_started.wait(timeout=30)
            if self.fail:
                # Until the scheduler has recorded the failure: the failed build's worker thread
                # ends right after that, under the scheduler's lock.
                self.failed.wait(timeout=30)
                for worker in threading.enumerate():
                    if worker.name.startswith("go-build-") and worker is not threading.current_thread():
                        worker.join(timeout=30)
        try:
            if component.name == self.fail:
                assert self.log_dir is not None
                log_file = self.log_dir / f"{component.name}.log"
                log_file.write_text(
                    "".join(f"line {n}\n" for n in range(100)) + "undefined: mirror.Service\n"
                )
                self.failed.set()
                raise BuildError(component, "`go build` exited with 1", log_file)
            return BuildTimes(1.0, 0.5, 0.1)
        finally:
            with self.lock:
                self.active -= 1
                self.events.append(("end", component.name))


def test_two_build_at_once_longest_first_and_kubernetes_node_after_kubernetes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeBuilds(hold=True)
    monkeypatch.setattr(binaries, "_build", fake)
    lines: list[str] = []

    done = binaries.build_components(reversed(COMPONENTS), log=lines.append, jobs=2)

    assert set(done) == {component.name for component in COMPONENTS}
    starts = [name for kind, name in fake.events if kind == "start"]
    assert starts[:2] == ["kubernetes", "traefik"]
    assert fake.most_active == 2
    assert fake.events.index(("start", "kubernetes-node")) > fake.events.index(("end", "kubernetes"))


def test_one_job_builds_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBuilds()
    monkeypatch.setattr(binaries, "_build", fake)

    binaries.build_components(COMPONENTS, log=lambda _: None, jobs=1)

    assert fake.most_active == 1
    assert [name for kind, name in fake.events if kind == "start"] == list(binaries.BUILD_ORDER)


def test_a_failed_build_is_named_with_its_log_tail_and_nothing_new_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeBuilds(fail="traefik", log_dir=tmp_path, hold=True)
    monkeypatch.setattr(binaries, "_build", fake)

    with pytest.raises(BuildError) as raised:
        binaries.build_components(COMPONENTS, log=lambda _: None, jobs=2)

    message = str(raised.value)
    assert message.startswith("building traefik v3.6.12 failed (`go build` exited with 1)")
    assert "undefined: mirror.Service" in message
    assert "line 99" in message and "line 70" not in message  # the tail, not the whole log
    # kubernetes, already running, finishes; no build starts after traefik's failure.
    assert [name for kind, name in fake.events if kind == "start"] == ["kubernetes", "traefik"]
    assert ("end", "kubernetes") in fake.events


def test_the_number_of_builds_at_once_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELDEPLOY_BUILD_JOBS", "3")
    assert binaries.build_jobs() == 3
    monkeypatch.delenv("MODELDEPLOY_BUILD_JOBS")
    assert binaries.build_jobs() == 2
    for bad in ("two", "0"):
        monkeypatch.setenv("MODELDEPLOY_BUILD_JOBS", bad)
        with pytest.raises(ValueError, match="MODELDEPLOY_BUILD_JOBS"):
            binaries.build_jobs()


def test_every_component_has_a_place_in_the_build_order() -> None:
    assert sorted(binaries.BUILD_ORDER) == sorted(component.name for component in COMPONENTS)
