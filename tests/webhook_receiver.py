"""A webhook receiver on 127.0.0.1 for tests: answers POSTs with given statuses, records what came."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """Answers each POST with the next of ``statuses`` (200 once they run out); records bodies and times."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.bodies: list[dict[str, Any]] = []
        self.times: list[float] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                owner.times.append(time.monotonic())
                self.send_response(owner.statuses.pop(0) if owner.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/retrain"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
