"""What operators configure in the portal from the command line: its users and its colours.
The CLI reaches the portal only through here (tests/cli/test_layout.py)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from services.portal import branding, users
from services.portal.branding import BrandError
from services.portal.passwords import WeakPassword
from services.portal.tables import PortalUser
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
