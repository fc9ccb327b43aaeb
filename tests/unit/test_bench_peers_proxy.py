"""The peers bench's Prometheus proxy: when each controller first got an answer above the breach."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from modeldeploy_dev.bench.peers import CountingProxy, breaching_apps


def answer(*values: float) -> bytes:
    result = [{"metric": {}, "value": [1.0, str(v)]} for v in values]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def test_an_answer_names_its_app_only_above_the_threshold() -> None:
    query = 'max(bench_error_rate{namespace="n",app="a0001"})'
    assert breaching_apps(query, answer(0.3), 0.2) == {"a0001"}
    assert breaching_apps(query, answer(0.001), 0.2) == set()
    assert breaching_apps(query, answer(), 0.2) == set()  # no series yet
    assert breaching_apps("max(bench_error_rate)", answer(0.3), 0.2) == set()  # names no app
    assert breaching_apps(query, b'{"status":"error"}', 0.2) == set()


@pytest.fixture
def prometheus() -> Iterator[tuple[str, dict[str, float]]]:
    """A stand-in Prometheus on 127.0.0.1 answering each app's query with the value set for it."""
    values: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, params: dict[str, list[str]]) -> None:
            app = params["query"][0].split('app="')[1].split('"')[0]
            content = answer(values.get(app, 0.0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def do_GET(self) -> None:
            self._answer(parse_qs(urlsplit(self.path).query))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._answer(parse_qs(self.rfile.read(length).decode()))

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", values
    server.shutdown()
    server.server_close()


def test_the_proxy_notes_the_first_breaching_answer_per_app_by_get_and_post(
    prometheus: tuple[str, dict[str, float]],
) -> None:
    upstream, values = prometheus
    proxy = CountingProxy(upstream)
    try:

        def ask(app: str, post: bool = False) -> None:
            query = {"query": f'max(bench_error_rate{{namespace="n",app="{app}"}})'}
            if post:
                requests.post(proxy.url + "/api/v1/query", data=query, timeout=5).raise_for_status()
            else:
                requests.get(proxy.url + "/api/v1/query", params=query, timeout=5).raise_for_status()

        values["a1"] = 0.3
        ask("a1")  # before the watch: not noted
        assert proxy.breaching == {}
        proxy.watch_breach(0.2)
        ask("a1")
        ask("a2", post=True)  # below: not noted
        first = proxy.breaching["a1"]
        time.sleep(0.01)
        ask("a1")  # a later answer keeps the first time
        values["a2"] = 0.3
        ask("a2", post=True)
        assert proxy.breaching["a1"] == first
        assert set(proxy.breaching) == {"a1", "a2"} and proxy.breaching["a2"] > first
        assert proxy.queries == 5
    finally:
        proxy.close()
