"""Fixtures of the integration tier beyond the session's (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modeldeploy_dev.metrics import Exporter
from modeldeploy_dev.operator import OperatorProcess


@pytest.fixture(name="own_operators")
def own_operators_fixture(
    operator: OperatorProcess, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Stop the session's operator; hand out operators this test may kill; restore it after.

    ``start(*extra_args, kubeconfig=None)`` starts one more operator with the
    session operator's identity and arguments plus ``extra_args``.
    """
    started: list[OperatorProcess] = []

    def start(*extra_args: str, kubeconfig: Path | None = None) -> OperatorProcess:
        process = OperatorProcess(
            kubeconfig or operator.kubeconfig,
            tmp_path / f"operator-{len(started)}.log",
            *operator.extra_args,
            *extra_args,
        )
        started.append(process)
        process.start(timeout=60)
        return process

    operator.stop()
    try:
        yield start
    finally:
        for process in started:
            process.kill()
        operator.start(timeout=60)


@pytest.fixture(name="exporter")
def exporter_fixture(cluster: Any, prometheus: str) -> Iterator[Exporter]:
    with Exporter(cluster.scrape_targets_dir) as exporter:
        yield exporter
