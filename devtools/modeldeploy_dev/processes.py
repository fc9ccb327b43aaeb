"""Starting, recording and stopping the local control plane's processes.

Every process starts in a session of its own, so that stopping it can signal
its whole process group and nothing it forked is left behind. What was started
is written to ``processes.json`` in the state directory, so that another
process (``modeldeploy-dev down``) can stop a cluster that ``dev up`` left
running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


class StartupError(RuntimeError):
    """A component did not become ready; the message carries the end of its log."""


@dataclass
class Process:
    name: str
    pid: int
    command: list[str]
    log: str

    def alive(self) -> bool:
        return pid_alive(self.pid)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers signal 0; it is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def log_tail(path: str | Path, lines: int = 40) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ProcessTable:
    """The processes of one state directory, persisted as JSON."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.file = directory / "processes.json"
        self.processes: list[Process] = []
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        if self.file.exists():
            self.processes = [Process(**entry) for entry in json.loads(self.file.read_text())]

    def save(self) -> None:
        self.file.write_text(json.dumps([asdict(p) for p in self.processes], indent=2))

    def get(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Process:
        log = self.directory / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            child = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
                cwd=self.directory,
            )
        self._children[child.pid] = child
        process = Process(name=name, pid=child.pid, command=command, log=str(log))
        self.processes = [p for p in self.processes if p.name != name] + [process]
        self.save()
        return process

    def stop(self, name: str, grace: float = 10.0, sig: int = signal.SIGTERM) -> None:
        process = self.get(name)
        _signal_group(process.pid, sig)
        deadline = time.monotonic() + grace
        while process.alive() and time.monotonic() < deadline:
            self._reap(process.pid)
            time.sleep(0.05)
        if process.alive():
            _signal_group(process.pid, signal.SIGKILL)
            while process.alive():
                self._reap(process.pid)
                time.sleep(0.05)
        # Whatever else the group held (children that ignored SIGTERM) goes too.
        _signal_group(process.pid, signal.SIGKILL)
        self._reap(process.pid)

    def restart(self, name: str) -> Process:
        process = self.get(name)
        self.stop(name)
        return self.start(name, process.command)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            self.stop(process.name)
        self.processes = []
        self.save()

    def _reap(self, pid: int) -> None:
        child = self._children.get(pid)
        if child is not None:
            child.poll()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    log: str | Path | None = None,
    interval: float = 0.2,
) -> None:
    """Poll check until it is true; on timeout raise with the component's log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(interval)
    tail = f"\n--- last lines of {log} ---\n{log_tail(log)}" if log else ""
    raise StartupError(f"{what} not ready after {timeout:.0f}s{tail}")


def http_ok(url: str) -> bool:
    """Whether a local component's health or readiness URL answers 200 (never through a proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def listening_addresses(pids: set[int], protocol: str = "tcp") -> set[tuple[str, int]]:
    """The (address, port) pairs on which these processes listen, read from /proc.

    protocol ``tcp``: listening sockets; ``udp``: bound sockets not connected to a peer
    (a UDP server's, such as a DNS server's).
    """
    if protocol not in ("tcp", "udp"):
        raise ValueError(f"protocol {protocol!r}: tcp or udp")
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found: set[tuple[str, int]] = set()
    for table in (f"/proc/net/{protocol}", f"/proc/net/{protocol}6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode not in inodes:
                continue
            if protocol == "tcp" and state != "0A":  # 0A: LISTEN
                continue
            if protocol == "udp" and int(remote.split(":")[1], 16) != 0:  # connected: a client's socket
                continue
            host_hex, port_hex = local.split(":")
            found.add((_decode_ip(host_hex), int(port_hex, 16)))
    return found


def _decode_ip(host_hex: str) -> str:
    if len(host_hex) == 8:
        return ".".join(str(int(host_hex[i : i + 2], 16)) for i in (6, 4, 2, 0))
    if host_hex == "00000000000000000000000001000000":
        return "::1"
    if host_hex == "0" * 32:
        return "::"
    return host_hex
