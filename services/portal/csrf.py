"""CSRF protection for every form post: a signed double-submit token.

Every visitor gets a random seed in a cookie (``backstop_csrf``; HttpOnly, SameSite=Lax), set by
:class:`CsrfCookie` on the first response. Pages put ``csrf_token`` — the seed signed with the
portal's key (itsdangerous) — in a hidden field of each form (``{{ csrf_field() }}`` in a
template); scripts send it as the ``X-CSRF-Token`` header. :func:`csrf_guard` runs before every
route: a POST, PUT, PATCH or DELETE whose token does not unsign to the cookie's seed — and, when
logged in, to the seed the session began with — is refused (403) before the route runs.

Requests carrying no session cookie but an ``Authorization`` header (API keys under ``/api/``)
cannot be forged by a browser on another site and are left to their own authentication.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import SimpleCookie

from fastapi import Request
from itsdangerous import BadSignature, Signer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.portal.errors import CsrfRefused
from services.portal.sessions import COOKIE as SESSION_COOKIE

COOKIE = "backstop_csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
SEED_MAX_AGE = 30 * 86400
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfTokens:
    def __init__(self, key: bytes) -> None:
        self._signer = Signer(key, salt="backstop-portal-csrf")

    def token(self, seed: str) -> str:
        return self._signer.sign(seed).decode()

    def matches(self, token: str, seed: str) -> bool:
        try:
            signed = self._signer.unsign(token).decode()
        except (BadSignature, UnicodeDecodeError):
            return False
        return hmac.compare_digest(signed, seed)


def seed_of(request: Request) -> str:
    """This visitor's seed (from the cookie, or the one :class:`CsrfCookie` is about to set)."""
    return str(request.scope.get("state", {}).get("csrf_seed") or "")


def token_of(request: Request) -> str:
    tokens: CsrfTokens = request.app.state.portal.csrf
    return tokens.token(seed_of(request))


class CsrfCookie:
    """ASGI middleware: a visitor without a seed cookie gets one with the response."""

    def __init__(self, app: ASGIApp, *, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seed = _cookie(scope, COOKIE)
        fresh = not seed or len(seed) > 100
        if fresh:
            seed = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_seed"] = seed
        if not fresh:
            await self.app(scope, receive, send)
            return
        # Long-lived: a session outliving the browser session still finds its seed.
        cookie = (f"{COOKIE}={seed}; Path=/; Max-Age={SEED_MAX_AGE}; HttpOnly; SameSite=Lax"
                  + ("; Secure" if self.secure else ""))

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, with_cookie)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header: as if there were none
                return None
            if name in jar:
                return jar[name].value
    return None


async def csrf_guard(request: Request) -> None:
    """Refuse an unsafe request without a valid token (an app-wide dependency)."""
    if request.method in SAFE_METHODS:
        return
    if SESSION_COOKIE not in request.cookies and "authorization" in request.headers:
        return
    token = request.headers.get(HEADER)
    if token is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # kept by Starlette: the route reads the same form
            value = form.get(FIELD)
            token = value if isinstance(value, str) else None
    portal = request.app.state.portal
    seed = request.cookies.get(COOKIE, "")
    if not token or not seed or not portal.csrf.matches(token, seed):
        raise CsrfRefused()
    session = portal.sessions.read(request)
    if session is not None and not hmac.compare_digest(session.csrf_seed, seed):
        raise CsrfRefused()
