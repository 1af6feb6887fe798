"""Logging in and out.

A login is checked against the user's argon2 hash, else (when configured) by binding to the
LDAP directory as the user. Failed logins are counted per client address and per account
(:class:`~shared.failure_budget.FailureBudget`): past the budget, logins are answered 429 before
any password is checked, whichever password is typed.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from services.portal import passwords, users
from services.portal.access import optional_viewer
from services.portal.csrf import seed_of
from services.portal.directory_login import DirectoryDown, DirectoryLogin, DirectoryUser
from services.portal.errors import TooManyAttempts, Unavailable
from services.portal.rendering import page
from services.portal.state import portal
from services.portal.tables import PortalUser
from services.portal.users import Viewer
from shared.config import PortalSettings
from shared.db import Database
from shared.failure_budget import FailureBudget, address_block

log = logging.getLogger(__name__)

router = APIRouter()


class LoginFailed(Exception):
    """Wrong address or password (the page says no more than that)."""


class Authenticator:
    def __init__(self, db: Database, settings: PortalSettings) -> None:
        rate = settings.portal_login_failures_per_minute / 60
        burst = settings.portal_login_failure_burst
        self._db = db
        self.by_address = FailureBudget(rate, burst)
        self.by_account = FailureBudget(rate, burst)
        self.directory = DirectoryLogin(settings) if settings.portal_ldap_url.strip() else None

    async def login(self, email: str, password: str, client: str | None) -> Viewer:
        """The viewer ``email`` logs in as; :class:`LoginFailed`, or :class:`TooManyAttempts`
        when the address or the account has no failure left to spend."""
        address = address_block(client) if client else None
        account = email.strip().lower()[:users.MAX_EMAIL]
        waits = [w for w in (self.by_address.exhausted(address),
                             self.by_account.exhausted(account)) if w is not None]
        if waits:
            raise TooManyAttempts(max(waits))
        viewer, local = await self._check(account, password)
        if viewer is None:
            self.by_address.failed(address)
            self.by_account.failed(account)
            raise LoginFailed()
        # Only a portal password that matched may be re-hashed (never a directory password).
        await self._db.run(
            lambda s: users.logged_in(s, viewer.user_id, password if local else None))
        return viewer

    async def _check(self, email: str, password: str) -> tuple[Viewer | None, bool]:
        """The viewer, and whether the portal's own password matched (else the directory)."""
        row = await self._db.run(lambda s: users.find(s, email))
        stored = row.password_hash if row is not None else None
        if await asyncio.to_thread(passwords.verify, stored, password):
            assert row is not None
            return Viewer.of(row), True
        return await self._directory_check(row, email, password), False

    async def _directory_check(self, row: PortalUser | None, email: str,
                               password: str) -> Viewer | None:
        if self.directory is None:
            return None
        try:
            entry = await asyncio.to_thread(self.directory.authenticate, email, password)
        except DirectoryDown as exc:
            if row is not None and row.password_hash is not None:
                return None  # a local user mistyped; the directory being down changes nothing
            log.warning("portal login through LDAP failed: %s", exc)
            raise Unavailable("The directory that checks this login does not answer; try "
                              "again in a minute.") from exc
        if entry is None:
            return None
        return await self._db.run(lambda s: _directory_user(s, email, entry))


def _directory_user(session: Session, email: str, entry: DirectoryUser) -> Viewer | None:
    """The user an LDAP login is: its own row, else one made from the entry's role grant."""
    row = users.find(session, email)
    grant = entry.grant
    if row is not None and row.source == "ldap" and grant is not None:
        row.role, row.reseller_id, row.customer_id, row.read_only = (
            grant.role.value, grant.reseller_id, grant.customer_id, grant.read_only)
        session.add(row)
    elif row is None:
        if grant is None:
            return None
        row = PortalUser(email=email, role=grant.role.value, reseller_id=grant.reseller_id,
                         customer_id=grant.customer_id, read_only=grant.read_only,
                         source="ldap")
        session.add(row)
        session.flush()
    elif row is not None and row.source == "ldap" and grant is None:
        return None  # the directory took the role away
    return Viewer.of(row)


def safe_next(target: str | None) -> str:
    """Where to go after login: a path of this portal only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/",
                     viewer: Viewer | None = Depends(optional_viewer)) -> Response:
    if viewer is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return await page(request, "login.html", {"next": safe_next(next), "email": ""})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, email: str = Form(..., max_length=users.MAX_EMAIL),
                password: str = Form(..., max_length=passwords.MAX_LENGTH),
                next: str = Form("/")) -> Response:
    state = portal(request)
    client = request.client.host if request.client else None
    try:
        viewer = await state.authenticator.login(email, password, client)
    except LoginFailed:
        return await page(request, "login.html", {
            "next": safe_next(next), "email": email,
            "error": "That e-mail address and password do not match."}, status=401)
    except TooManyAttempts as exc:
        return await page(request, "login.html", {
            "next": safe_next(next), "email": email, "error": exc.message},
            status=429, headers={"Retry-After": str(exc.retry_after)})
    response = RedirectResponse(safe_next(next), status_code=303)
    state.sessions.begin(response, viewer.user_id, viewer.session_epoch, seed_of(request))
    log.info("portal login", extra={"user_id": viewer.user_id})
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Log out everywhere: the user's session epoch moves on, so no copy of the cookie (another
    browser, a stolen one) stays valid."""
    state = portal(request)
    data = state.sessions.read(request)
    if data is not None:
        await state.db.run(lambda s: users.end_sessions(s, data.user_id))
    response = RedirectResponse("/login", status_code=303)
    state.sessions.end(response)
    return response


def login_url(path: str) -> str:
    return "/login" if path in ("", "/") else f"/login?next={quote(path, safe='/')}"
