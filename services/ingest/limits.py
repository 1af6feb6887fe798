"""The request body size limit, enforced before any of the body reaches the application."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.errors import PayloadTooLarge, answer


class BodyLimitMiddleware:
    """Answers 413 to bodies over ``max_bytes``.

    A declared ``Content-Length`` is checked up front (the server never delivers more than it
    declares). A chunked body has no length, so it is read up to the limit and then replayed.
    A request with neither has no body.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, chunked = _body_framing(scope)
        if length is not None and length > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        if not chunked:
            # Content-Length bounds what the server delivers; without it (nor chunking) there
            # is no body at all, e.g. the GET pings.
            await self.app(scope, receive, send)
            return
        buffered = await self._read_up_to_limit(receive)
        if buffered is None:
            await self._refuse(scope, receive, send)
            return
        await self.app(scope, _replay(buffered, receive), send)

    async def _read_up_to_limit(self, receive: Receive) -> list[Message] | None:
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return None
            if not message.get("more_body", False):
                return messages

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = answer(PayloadTooLarge(f"request body is over {self.max_bytes} bytes"))
        await response(scope, receive, send)


def _body_framing(scope: Scope) -> tuple[int | None, bool]:
    """(declared Content-Length, whether the body is chunked)."""
    length, chunked = None, False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    return length, chunked


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
