"""Seeing each HTTP request answered: its status and how long the answer took.

The ASGI middlewares that count, time or log requests (ingest's metrics, the access log) all
need the status the app sent and the time it took; this base class finds both once.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AnsweredRequests:
    """ASGI middleware calling :meth:`answered` once per HTTP request, after the app is done."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def status_of(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, status_of)
        finally:
            self.answered(scope, status, time.perf_counter() - started)

    def answered(self, scope: Scope, status: int, seconds: float) -> None:
        raise NotImplementedError
