"""Real receivers on 127.0.0.1 for notification tests: an SMTP server, a JSON webhook, a CloudEvents sink."""

from __future__ import annotations

import email
import email.message
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from cloudevents.http import CloudEvent, from_http

from modeldeploy_dev.cluster import free_port


class Mailbox:
    """An SMTP server (aiosmtpd) that keeps every message it accepts; reached as Apprise ``mailto://``."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    @property
    def apprise_url(self) -> str:
        """Plain SMTP (no TLS) on the test's port: Apprise's ``mode=insecure``."""
        return f"mailto://127.0.0.1:{self.port}?from=modeldeploy@example.com&to=sre@example.com&mode=insecure"

    def subjects(self) -> list[str]:
        with self.lock:
            return [str(m["Subject"]) for m in self.messages]

    def text(self, message: email.message.Message) -> str:
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                return payload.decode() if isinstance(payload, bytes) else ""
        return ""

    def close(self) -> None:
        self.controller.stop()


class _Server:
    def __init__(self, handle: Any) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                handle(dict(self.headers.items()), body)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class JsonHook(_Server):
    """Keeps the JSON bodies that Apprise's ``json://`` plugin posts (version, title, message, type)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        super().__init__(self._take)

    def _take(self, headers: dict[str, str], body: bytes) -> None:
        with self.lock:
            self.bodies.append(json.loads(body))

    @property
    def apprise_url(self) -> str:
        return self.url.replace("http://", "json://") + "hook"

    def titles(self) -> list[str]:
        with self.lock:
            return [str(b["title"]) for b in self.bodies]


class CloudEventSink(_Server):
    """A CloudEvents sink: every POST parsed by the CloudEvents SDK (structured or binary mode)."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        self.lock = threading.Lock()
        super().__init__(self._take)

    def _take(self, headers: dict[str, str], body: bytes) -> None:
        event = from_http(headers, body)
        with self.lock:
            self.events.append(event)

    def received(self) -> list[CloudEvent]:
        with self.lock:
            return list(self.events)
