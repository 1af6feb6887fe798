"""API keys: scripts read the portal's JSON API (``/api/v1/``) as a user, without a session.

A key belongs to one portal user and sees exactly what that user sees (role, scope); the API
only reads, so a key never changes anything. Keys carry 256 random bits (``bsk_…``), are shown
once and stored as a SHA-256 digest (as ingest tokens are: no stretching needed at that entropy).
A revoked key, or one whose user was removed, stops working at once (every request reads the
key and its user). ``last_used_at`` is written at most once a minute per key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from services.portal.tables import PortalApiKey, PortalUser
from shared.credentials import digest
from shared.events import utcnow
from shared.text import BREAKING

PREFIX = "bsk_"
MAX_NAME = 100
USE_RECORDED_EVERY = timedelta(minutes=1)


class ApiKeyError(ValueError):
    """An invalid request about keys (unknown user or key, bad name)."""


@dataclass(frozen=True)
class IssuedKey:
    key: PortalApiKey
    secret: str  # shown once


def _user(session: Session, email: str) -> PortalUser:
    row = session.exec(select(PortalUser).where(
        PortalUser.email == email.strip().lower())).first()
    if row is None:
        raise ApiKeyError(f"no user {email.strip().lower()!r}")
    return row


def create(session: Session, email: str, name: str) -> IssuedKey:
    """A new key for the user ``email``, named ``name`` (what it is for)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or BREAKING.search(name):
        raise ApiKeyError(f"a key's name is 1-{MAX_NAME} characters without control characters")
    user = _user(session, email)
    secret = PREFIX + secrets.token_urlsafe(32)
    row = PortalApiKey(user_id=user.id, name=name, key_hash=digest(secret),
                       hint=secret[:len(PREFIX) + 4])
    session.add(row)
    session.flush()
    return IssuedKey(row, secret)


def listing(session: Session, email: str | None = None,
            include_revoked: bool = False) -> list[tuple[PortalApiKey, str]]:
    """Keys with their user's address, oldest first."""
    query = (select(PortalApiKey, PortalUser.email)
             .join(PortalUser, col(PortalUser.id) == PortalApiKey.user_id)
             .order_by(col(PortalApiKey.created_at), col(PortalApiKey.id)))
    if email is not None:
        query = query.where(PortalUser.email == email.strip().lower())
    if not include_revoked:
        query = query.where(col(PortalApiKey.revoked_at).is_(None))
    return [(key, address) for key, address in session.exec(query).all()]


def revoke(session: Session, key_id: str, at: datetime | None = None) -> PortalApiKey:
    row = session.get(PortalApiKey, key_id)
    if row is None or row.revoked_at is not None:
        raise ApiKeyError(f"no active key {key_id!r}")
    row.revoked_at = at or utcnow()
    session.add(row)
    return row


def user_of(session: Session, secret: str, now: datetime | None = None) -> PortalUser | None:
    """The user a presented key acts as; None for an unknown, revoked or orphaned key."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    found = session.exec(select(PortalApiKey, PortalUser)
                         .join(PortalUser, col(PortalUser.id) == PortalApiKey.user_id)
                         .where(PortalApiKey.key_hash == digest(secret),
                                col(PortalApiKey.revoked_at).is_(None))).first()
    if found is None:
        return None
    key, user = found
    now = now or utcnow()
    if key.last_used_at is None or now - key.last_used_at >= USE_RECORDED_EVERY:
        key.last_used_at = now
        session.add(key)
    return user
