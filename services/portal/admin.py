"""What operators configure in the portal from the command line: its users, their API keys and
its colours.
The CLI reaches the portal only through here (tests/cli/test_layout.py)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from services.portal import api_keys, branding, users
from services.portal.branding import BrandError
from services.portal.passwords import WeakPassword
from services.portal.tables import PortalApiKey, PortalUser
from services.portal.users import Role, UserError
from shared.tenancy import Reseller

ROLES = tuple(r.value for r in Role)


class ConfigError(ValueError):
    """An operator's invalid request: the CLI says why and exits 2."""


def _row(row: PortalUser, session: Session) -> dict[str, Any]:
    return {"email": row.email, "role": row.role, "reseller_id": row.reseller_id,
            "customer_id": row.customer_id, "read_only": row.read_only,
            "login": "password" if row.password_hash else "ldap",
            "created_at": row.created_at, "last_login_at": row.last_login_at}


def add_user(session: Session, email: str, role: str, password: str | None, *,
             reseller: str | None, customer: str | None, read_only: bool) -> dict[str, Any]:
    if role not in ROLES:
        raise ConfigError(f"--role must be one of {', '.join(ROLES)}")
    try:
        row = users.add(session, email, Role(role), password, reseller=reseller,
                        customer=customer, read_only=read_only)
    except (UserError, WeakPassword) as exc:
        raise ConfigError(str(exc)) from exc
    return _row(row, session)


def list_users(session: Session) -> list[dict[str, Any]]:
    _, rows = users.listing(session, None, 0)
    return [_row(row, session) for row in rows]


def remove_user(session: Session, email: str) -> None:
    try:
        users.remove(session, email)
    except UserError as exc:
        raise ConfigError(str(exc)) from exc


def set_password(session: Session, email: str, password: str) -> None:
    try:
        users.set_password(session, email, password)
    except (UserError, WeakPassword) as exc:
        raise ConfigError(str(exc)) from exc


def set_colour(session: Session, reseller: str, colour: str | None) -> None:
    rid = branding.reseller_of_host(session, reseller)
    if rid is None:
        raise ConfigError(f"no reseller {reseller!r}")
    try:
        branding.set_colour(session, rid, colour)
    except BrandError as exc:
        raise ConfigError(str(exc)) from exc


def colour_of(session: Session, reseller_id: str) -> str | None:
    found = session.get(Reseller, reseller_id)
    return branding.load(session, found.id).colour if found is not None else None


def create_api_key(session: Session, email: str, name: str) -> dict[str, Any]:
    """A new API key for the user; the returned ``key`` is shown this once."""
    try:
        issued = api_keys.create(session, email, name)
    except api_keys.ApiKeyError as exc:
        raise ConfigError(str(exc)) from exc
    return {**_key_row(issued.key, email.strip().lower()), "key": issued.secret}


def list_api_keys(session: Session, email: str | None,
                  include_revoked: bool) -> list[dict[str, Any]]:
    return [_key_row(key, address)
            for key, address in api_keys.listing(session, email, include_revoked)]


def revoke_api_key(session: Session, key_id: str) -> None:
    try:
        api_keys.revoke(session, key_id)
    except api_keys.ApiKeyError as exc:
        raise ConfigError(str(exc)) from exc


def _key_row(key: PortalApiKey, email: str) -> dict[str, Any]:
    return {"id": key.id, "user": email, "name": key.name, "hint": key.hint + "…",
            "created_at": key.created_at, "last_used_at": key.last_used_at,
            "revoked_at": key.revoked_at}
