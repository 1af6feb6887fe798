"""The portal's tables: who may log in (and what they may see), and the reseller branding the
portal adds to the notifier's (``brands``): a colour, and host names showing it at login."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from shared.db import UtcDateTime
from shared.events import utcnow
from shared.tenancy import new_id


class PortalUser(SQLModel, table=True):
    __tablename__ = "portal_users"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    # Lower-cased: one account per address however it is typed.
    email: str = Field(unique=True, max_length=320)
    # argon2id (services/portal/passwords.py); NULL: logs in through LDAP only.
    password_hash: str | None = Field(default=None, max_length=200)
    role: str = Field(max_length=16)  # operator | reseller | customer
    reseller_id: str | None = Field(default=None, max_length=32)
    customer_id: str | None = Field(default=None, max_length=32)
    read_only: bool = False
    # Raised on a password change or removal: every session signed with an older epoch ends.
    session_epoch: int = 0
    # "local" (added with `backstop users add`) or "ldap" (made at a first LDAP login from the
    # directory's role attribute, its role refreshed at every login).
    source: str = Field(default="local", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class PortalBrand(SQLModel, table=True):
    """What the portal shows of a reseller beyond the notifier's name and logo."""

    __tablename__ = "portal_brands"

    reseller_id: str = Field(primary_key=True, max_length=32)
    # #rrggbb: the header's colour (text on it is white; see branding.readable).
    colour: str | None = Field(default=None, max_length=7)


class PortalApiKey(SQLModel, table=True):
    """A script's key to the JSON API, acting as its user (services/portal/api_keys.py)."""

    __tablename__ = "portal_api_keys"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="portal_users.id", index=True, max_length=32)
    name: str = Field(max_length=100)
    key_hash: str = Field(unique=True, max_length=64)
    # The key's first characters, so a person can tell their keys apart.
    hint: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
