"""The benchmark's receiving end: a webhook receiver (HTTP, own thread) and an SMTP sink."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from shared.natsd import free_port


class WebhookReceiver:
    """Records, per (account id, job), when the first alert arrived (perf_counter)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.arrivals: dict[tuple[str, str], float] = {}
        self.total = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                at = time.perf_counter()
                receiver.record(json.loads(body), at)
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def record(self, payload: dict[str, Any], at: float) -> None:
        data = payload["data"]
        key = (data["account"]["id"], data["alert"]["job"] or "")
        with self._lock:
            self.total += 1
            if data["action"] == "trigger":
                self.arrivals.setdefault(key, at)

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class SmtpSink:
    def __init__(self) -> None:
        self.times: list[float] = []

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        self.times.append(time.perf_counter())
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        self.sink = SmtpSink()
        self.port = free_port()
        self._controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
