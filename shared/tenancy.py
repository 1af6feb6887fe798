"""Tenancy: reseller → customer → account → job, and the accounts' credentials."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint, func
from sqlalchemy import select as sql_select
from sqlmodel import Field, Session, SQLModel, col, select

from shared.credentials import digest, new_ping_key, new_token
from shared.db import UtcDateTime
from shared.events import MAX_INT64, Tenant, utcnow
from shared.text import BREAKING
from shared.ttlcache import TtlCache

# Whole-string matches only (fullmatch): with ``match``, "$" also matches before a final newline.
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# The same rule as a JSON Schema pattern (those search, so it needs its anchors): documentation.
JOB_NAME_PATTERN = rf"^{JOB_NAME.pattern}$"
MAX_NAME = 200  # resellers', customers' and accounts' names: their columns' length


class TenancyError(ValueError):
    """A tenancy rule was broken (bad name, unknown account, …)."""


class AccountNotFound(TenancyError):
    pass


class InvalidName(TenancyError):
    """A job, reseller, customer or account name breaks the naming rules."""


def check_job_name(name: str) -> str:
    """The one check of a job name, for the JSON API, the ping URLs and the database alike."""
    if JOB_NAME.fullmatch(name) is None:
        raise InvalidName(f"job name {name!r} must be 1-128 letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit")
    return name


def check_name(label: str, name: str) -> str:
    """A reseller's, customer's or account's name: free text that fits its column and carries
    no control characters (names end up in e-mail subjects and log lines)."""
    if not name.strip():
        raise InvalidName(f"{label} name must not be empty")
    if len(name) > MAX_NAME:
        raise InvalidName(f"{label} name is longer than {MAX_NAME} characters")
    if BREAKING.search(name):
        raise InvalidName(f"{label} name {name!r} contains control characters")
    return name


def new_id() -> str:
    return uuid.uuid4().hex[:16]


class Reseller(SQLModel, table=True):
    __tablename__ = "resellers"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(unique=True, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("reseller_id", "name"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    reseller_id: str = Field(foreign_key="resellers.id", index=True, max_length=32)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("customer_id", "name"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customers.id", index=True, max_length=32)
    reseller_id: str = Field(foreign_key="resellers.id", index=True, max_length=32)
    name: str = Field(max_length=200)
    contacts: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    quota_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    ping_key_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)

    def tenant(self) -> Tenant:
        return Tenant(reseller=self.reseller_id, customer=self.customer_id, account=self.id)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    name: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


@dataclass(frozen=True)
class IssuedAccount:
    """What ``accounts create`` hands out once: the secrets are never stored in clear."""

    account: Account
    reseller: Reseller
    customer: Customer
    token: str
    ping_key: str


def _get_or_create_reseller(session: Session, name: str) -> Reseller:
    found = session.exec(select(Reseller).where(Reseller.name == name)).first()
    if found:
        return found
    reseller = Reseller(name=name)
    session.add(reseller)
    session.flush()
    return reseller


def _get_or_create_customer(session: Session, reseller: Reseller, name: str) -> Customer:
    found = session.exec(
        select(Customer).where(Customer.reseller_id == reseller.id, Customer.name == name)
    ).first()
    if found:
        return found
    customer = Customer(reseller_id=reseller.id, name=name)
    session.add(customer)
    session.flush()
    return customer


def create_account(
    session: Session,
    *,
    reseller: str,
    customer: str,
    name: str,
    contacts: list[str],
    quota_bytes: int | None = None,
) -> IssuedAccount:
    """Create the account, and whatever is missing along its reseller/customer path."""
    for label, value in (("reseller", reseller), ("customer", customer), ("account", name)):
        check_name(label, value)
    res = _get_or_create_reseller(session, reseller)
    cust = _get_or_create_customer(session, res, customer)
    exists = session.exec(
        select(Account).where(Account.customer_id == cust.id, Account.name == name)
    ).first()
    if exists:
        raise TenancyError(f"account {name!r} already exists for customer {customer!r}")
    ping_key = new_ping_key()
    account = Account(
        customer_id=cust.id, reseller_id=res.id, name=name, contacts=contacts,
        quota_bytes=quota_bytes, ping_key_hash=digest(ping_key),
    )
    session.add(account)
    session.flush()
    token = issue_token(session, account.id)
    return IssuedAccount(
        account=account, reseller=res, customer=cust, token=token, ping_key=ping_key
    )


def set_quota(session: Session, account_id: str, quota_bytes: int | None) -> Account:
    """The account's storage quota (None: none). Usage reports that name no quota of their own
    are measured against it from the next report on."""
    if quota_bytes is not None and not 0 < quota_bytes <= MAX_INT64:
        raise TenancyError("a quota is a positive number of bytes")
    account = session.get(Account, account_id)
    if account is None:
        raise AccountNotFound(account_id)
    account.quota_bytes = quota_bytes
    session.add(account)
    return account


def issue_token(session: Session, account_id: str) -> str:
    token = new_token()
    session.add(ApiToken(account_id=account_id, token_hash=digest(token)))
    session.flush()
    return token


def account_for_token(session: Session, token: str) -> Account | None:
    row = session.exec(
        select(ApiToken).where(ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    return session.get(Account, row.account_id) if row else None


def account_for_ping_key(session: Session, ping_key: str) -> Account | None:
    return session.exec(select(Account).where(Account.ping_key_hash == digest(ping_key))).first()


def get_or_create_job(session: Session, account_id: str, name: str) -> Job:
    check_job_name(name)
    found = session.exec(select(Job).where(Job.account_id == account_id, Job.name == name)).first()
    if found:
        return found
    job = Job(account_id=account_id, name=name)
    session.add(job)
    session.flush()
    return job


def account_path(session: Session, account_id: str) -> tuple[Reseller, Customer, Account]:
    account = session.get(Account, account_id)
    if account is None:
        raise AccountNotFound(account_id)
    customer = session.get(Customer, account.customer_id)
    reseller = session.get(Reseller, account.reseller_id)
    assert customer is not None and reseller is not None  # enforced by foreign keys
    return reseller, customer, account


@dataclass(frozen=True)
class AccountPath:
    """An account with its customer and reseller, by id and by name: directories key entries
    by either, messages show the names, webhook payloads carry both."""

    reseller_id: str
    reseller: str
    customer_id: str
    customer: str
    account_id: str
    account: str


def lookup_path(session: Session, account_id: str) -> AccountPath:
    reseller, customer, account = account_path(session, account_id)
    return AccountPath(reseller.id, reseller.name, customer.id, customer.name, account.id,
                       account.name)


def all_paths(session: Session, *, names: Collection[str] | None = None,
              ids: Collection[str] | None = None) -> list[AccountPath]:
    """The paths of every account, or of those with one of ``names`` (compared without case)
    or ``ids``: plain columns, a few hundred values per query."""
    query = (sql_select(col(Reseller.id), col(Reseller.name), col(Customer.id),
                        col(Customer.name), col(Account.id), col(Account.name))
             .join(Customer, col(Customer.id) == Account.customer_id)
             .join(Reseller, col(Reseller.id) == Account.reseller_id))
    if names is None and ids is None:
        return [AccountPath(*row) for row in session.execute(query)]
    column = func.lower(col(Account.name)) if names is not None else col(Account.id)
    wanted = sorted({n.lower() for n in names} if names is not None else set(ids or ()))
    out: list[AccountPath] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        out += [AccountPath(*row) for row in session.execute(query.where(column.in_(chunk)))]
    return out


class AccountPaths:
    """Account paths through a short-lived cache: a renamed customer shows within ``ttl``
    seconds. Raises :class:`AccountNotFound` (never cached: the account may come)."""

    def __init__(self, ttl: float = 5.0) -> None:
        self._cache: TtlCache[str, AccountPath] = TtlCache(ttl)

    def get(self, session: Session, account_id: str) -> AccountPath:
        return self._cache.get(account_id, lambda: lookup_path(session, account_id))
