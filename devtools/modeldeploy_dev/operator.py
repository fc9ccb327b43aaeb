"""The operator as a real process, for the integration tests, the demo and the benchmarks.

Running it as a subprocess (not in the test's own event loop) is what lets a
test SIGKILL it mid-rollout and start it again, exactly as a crashed pod would
be restarted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from modeldeploy_dev.cluster import free_port
from modeldeploy_dev.processes import StartupError, log_tail


class OperatorProcess:
    def __init__(self, kubeconfig: Path, log: Path, *extra_args: str) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.extra_args = list(extra_args)
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 30) -> None:
        command = [
            sys.executable,
            "-m",
            "modeldeploy.cli.main",
            "run",
            "--kubeconfig",
            str(self.kubeconfig),
            "--bind-address",
            "127.0.0.1",
            "--metrics-port",
            str(self.metrics_port),
            "--health-port",
            str(self.health_port),
            # Everything the local cluster runs (Prometheus, model servers, webhook
            # receivers) listens on 127.0.0.1, which the operator refuses unless the
            # admin lists it: this harness is the admin here.
            "--egress-allow",
            "127.0.0.0/8",
            *self.extra_args,
        ]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StartupError(f"operator exited with {self.process.returncode}\n{log_tail(self.log)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise StartupError(f"operator not healthy after {timeout}s\n{log_tail(self.log)}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as when a node dies."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM, grace=15)

    def _signal(self, sig: int, grace: float = 5) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            return str(response.read().decode())
