"""Portal users: who they are, which role they have and what that lets them see.

* **operator**: everything;
* **reseller** staff: their reseller's customers;
* **customer** users: their customer's accounts.

Each may be read-only. A user's :class:`~shared.scopes.Scope` is what every query of the pages
and the API filters by.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import Session, col, select

from services.portal import passwords
from services.portal.tables import PortalUser
from shared.events import utcnow
from shared.scopes import Scope
from shared.tenancy import Customer, Reseller

MAX_EMAIL = 320


class Role(StrEnum):
    operator = "operator"
    reseller = "reseller"
    customer = "customer"


class UserError(ValueError):
    """An invalid request about users (unknown reseller, duplicate address, …)."""


class UnknownUser(UserError):
    pass


@dataclass(frozen=True)
class Viewer:
    """The logged-in user as a request sees it."""

    user_id: str
    email: str
    role: Role
    reseller_id: str | None
    customer_id: str | None
    read_only: bool
    session_epoch: int

    @property
    def scope(self) -> Scope:
        if self.role is Role.operator:
            return Scope.everything()
        assert self.reseller_id is not None
        if self.role is Role.reseller:
            return Scope.of_reseller(self.reseller_id)
        assert self.customer_id is not None
        return Scope.of_customer(self.reseller_id, self.customer_id)

    @classmethod
    def of(cls, row: PortalUser) -> Viewer:
        return cls(row.id, row.email, Role(row.role), row.reseller_id, row.customer_id,
                   row.read_only, row.session_epoch)


def normal_email(email: str) -> str:
    email = email.strip().lower()
    if not email or "@" not in email or len(email) > MAX_EMAIL or any(c.isspace() for c in email):
        raise UserError(f"not an e-mail address: {email!r}")
    return email


def resolve_tenant(session: Session, role: Role, reseller: str | None,
                   customer: str | None) -> tuple[str | None, str | None]:
    """(reseller id, customer id) of a role, from names or ids; refused when they do not fit."""
    if role is Role.operator:
        if reseller or customer:
            raise UserError("an operator sees everything: no --reseller or --customer")
        return None, None
    if not reseller:
        raise UserError(f"a {role.value} user needs --reseller")
    found = session.exec(select(Reseller).where(
        (col(Reseller.id) == reseller) | (col(Reseller.name) == reseller))).first()
    if found is None:
        raise UserError(f"no reseller {reseller!r}")
    if role is Role.reseller:
        if customer:
            raise UserError("a reseller user sees all its customers: no --customer")
        return found.id, None
    if not customer:
        raise UserError("a customer user needs --customer")
    cust = session.exec(select(Customer).where(
        Customer.reseller_id == found.id,
        (col(Customer.id) == customer) | (col(Customer.name) == customer))).first()
    if cust is None:
        raise UserError(f"no customer {customer!r} of reseller {found.name!r}")
    return found.id, cust.id


def add(session: Session, email: str, role: Role, password: str | None, *,
        reseller: str | None = None, customer: str | None = None, read_only: bool = False,
        source: str = "local") -> PortalUser:
    email = normal_email(email)
    if find(session, email) is not None:
        raise UserError(f"user {email} exists already")
    reseller_id, customer_id = resolve_tenant(session, role, reseller, customer)
    row = PortalUser(email=email, role=role.value, reseller_id=reseller_id,
                     customer_id=customer_id, read_only=read_only, source=source,
                     password_hash=passwords.hash_password(password) if password else None)
    session.add(row)
    session.flush()
    return row


def find(session: Session, email: str) -> PortalUser | None:
    return session.exec(select(PortalUser).where(
        PortalUser.email == email.strip().lower())).first()


def get(session: Session, user_id: str) -> PortalUser | None:
    return session.get(PortalUser, user_id)


def require(session: Session, email: str) -> PortalUser:
    row = find(session, email)
    if row is None:
        raise UnknownUser(f"no user {email.strip().lower()}")
    return row


def set_password(session: Session, email: str, password: str) -> PortalUser:
    """A new password; every session of the user ends."""
    row = require(session, email)
    row.password_hash = passwords.hash_password(password)
    row.session_epoch += 1
    session.add(row)
    return row


def remove(session: Session, email: str) -> None:
    session.delete(require(session, email))


def end_sessions(session: Session, user_id: str) -> None:
    row = session.get(PortalUser, user_id)
    if row is not None:
        row.session_epoch += 1
        session.add(row)


def listing(session: Session, limit: int | None, offset: int) -> tuple[int, list[PortalUser]]:
    total = session.exec(select(func.count()).select_from(PortalUser)).one()
    query = select(PortalUser).order_by(PortalUser.email).offset(offset)
    if limit:
        query = query.limit(limit)
    return total, list(session.exec(query).all())


def logged_in(session: Session, user_id: str, password: str | None) -> None:
    """Record a successful login; re-hash a local password made with older parameters."""
    row = session.get(PortalUser, user_id)
    if row is None:
        return
    row.last_login_at = utcnow()
    if password and row.password_hash and passwords.needs_rehash(row.password_hash):
        row.password_hash = passwords.hash_password(password)
    session.add(row)
