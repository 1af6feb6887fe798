"""Security headers on every portal response: no framing, no sniffing, scripts and styles from
the portal itself only (logos may come from the reseller's https site), no referrer to others."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Style attributes carry the reseller colour (a validated #rrggbb) and chart geometry.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
          "style-src-attr 'unsafe-inline'; img-src 'self' https: data:; connect-src 'self'; "
          "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
HEADERS = [
    (b"content-security-policy", POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
