"""A stand-in model server on 127.0.0.1 for tests: answers any request, with a latency and status we set.

It records what it received (path, revision header, body), so a test can check
that warm-up really sent its payloads to the candidate.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ModelServer:
    def __init__(self) -> None:
        self.delay = 0.0
        self.status = 200
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with owner._lock:
                    owner.received.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "body": body.decode(errors="replace"),
                            "revision": self.headers.get("X-Modeldeploy-Revision"),
                        }
                    )
                time.sleep(owner.delay)
                payload = json.dumps({"score": 0.5}).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def requests_for(self, revision: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.received if r["revision"] == revision]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
