"""Sessions in signed cookies: the user's id and session epoch, signed with itsdangerous and
timed. Nothing is stored server-side; a password change or the user's removal raises the epoch
(services/portal/users.py), which ends every session signed before.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Lax`` (no cross-site form post
carries it) and ``Secure`` when ``BACKSTOP_PORTAL_SECURE_COOKIES`` says the portal is served
over HTTPS.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from shared.config import PortalSettings
from shared.secretbox import secret_box

COOKIE = "backstop_session"


def signing_key(settings: PortalSettings) -> bytes:
    """The portal's cookie key: the configured one, else derived from the installation's secret
    keys (so every replica sharing them agrees)."""
    if settings.portal_session_secret:
        return settings.portal_session_secret.encode()
    return secret_box(settings).derive("portal-cookies")


@dataclass(frozen=True)
class SessionData:
    user_id: str
    epoch: int
    # The CSRF cookie's value when the session began: a form must carry a token of it.
    csrf_seed: str


class Sessions:
    def __init__(self, key: bytes, *, max_age_seconds: float, secure: bool) -> None:
        self._signer = URLSafeTimedSerializer(key, salt="backstop-portal-session")
        self.max_age = int(max_age_seconds)
        self.secure = secure

    def read(self, request: Request) -> SessionData | None:
        """The request's session, or None (no cookie, a forged or expired one)."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._signer.loads(raw, max_age=self.max_age)
            return SessionData(str(data["u"]), int(data["e"]), str(data["c"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None

    def begin(self, response: Response, user_id: str, epoch: int, csrf_seed: str) -> None:
        value = self._signer.dumps({"u": user_id, "e": epoch, "c": csrf_seed})
        response.set_cookie(COOKIE, value, max_age=self.max_age, path="/", httponly=True,
                            samesite="lax", secure=self.secure)

    def end(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax",
                               secure=self.secure)
