"""Accounts as the quotas page lists them: storage from the latest usage report, the quota, how
full it is, and the quota threshold in force with where it comes from; an account's jobs.

Scoped in the query on the account's tenant columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, or_
from sqlalchemy import select as sql_select
from sqlmodel import Session

from services.evaluator.store import load_policies
from services.portal.history.tables import HistoryUsageDay
from shared.db import core_table
from shared.events import Tenant
from shared.scopes import Scope
from shared.tenancy import Account, Customer, Job, Reseller

MAX_PAGE = 500
_ACCOUNTS, _CUSTOMERS, _RESELLERS = core_table(Account), core_table(Customer), core_table(Reseller)
_USAGE, _JOBS = core_table(HistoryUsageDay), core_table(Job)


@dataclass(frozen=True)
class AccountRow:
    account_id: str
    account: str
    customer_id: str
    customer: str
    reseller_id: str
    reseller: str
    bytes_used: int | None  # the latest report's
    quota_bytes: int | None  # the latest report's, else the account's
    own_quota_bytes: int | None  # the account's own (set on the account, not by its client)
    percent_used: float | None  # of the quota, when both are known
    quota_percent: float  # the threshold in force
    quota_percent_from: str  # account, customer, reseller or default (database values)


def _percent(used: int | None, quota: int | None) -> float | None:
    return None if used is None or not quota else round(100.0 * used / quota, 1)


@dataclass(frozen=True)
class AccountPage:
    items: list[AccountRow]
    total: int
    offset: int
    limit: int


def accounts(session: Session, scope: Scope, *, text: str = "", customer_id: str | None = None,
             account_id: str | None = None, limit: int = 100, offset: int = 0) -> AccountPage:
    """Accounts in scope by customer and name, a page at a time."""
    if not 0 < limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    latest = (sql_select(_USAGE.c.account_id, func.max(_USAGE.c.day).label("day"))
              .where(scope.where(_USAGE.c.reseller_id, _USAGE.c.customer_id))
              .group_by(_USAGE.c.account_id).subquery())
    where = [scope.where(_ACCOUNTS.c.reseller_id, _ACCOUNTS.c.customer_id)]
    if customer_id:
        where.append(_ACCOUNTS.c.customer_id == customer_id)
    if account_id:
        where.append(_ACCOUNTS.c.id == account_id)
    if text:
        where.append(or_(_ACCOUNTS.c.name.icontains(text, autoescape=True),
                         _CUSTOMERS.c.name.icontains(text, autoescape=True)))
    statement = (
        sql_select(_ACCOUNTS.c.id, _ACCOUNTS.c.name, _ACCOUNTS.c.quota_bytes.label("own_quota"),
                   _CUSTOMERS.c.id.label("customer_id"), _CUSTOMERS.c.name.label("customer"),
                   _RESELLERS.c.id.label("reseller_id"), _RESELLERS.c.name.label("reseller"),
                   _USAGE.c.bytes_used, _USAGE.c.quota_bytes)
        .join(_CUSTOMERS, _CUSTOMERS.c.id == _ACCOUNTS.c.customer_id)
        .join(_RESELLERS, _RESELLERS.c.id == _ACCOUNTS.c.reseller_id)
        .join(latest, latest.c.account_id == _ACCOUNTS.c.id, isouter=True)
        .join(_USAGE, and_(_USAGE.c.account_id == latest.c.account_id,
                           _USAGE.c.day == latest.c.day), isouter=True)
        .where(*where))
    total = session.execute(sql_select(func.count()).select_from(
        statement.subquery())).scalar_one()
    rows = session.execute(statement.order_by(_CUSTOMERS.c.name, _ACCOUNTS.c.name,
                                              _ACCOUNTS.c.id).limit(limit).offset(offset))
    book = load_policies(session)
    items = []
    for row in rows.mappings():
        value, source = book.resolve("quota_percent", Tenant(
            reseller=row["reseller_id"], customer=row["customer_id"], account=row["id"]))
        quota = row["quota_bytes"] if row["quota_bytes"] is not None else row["own_quota"]
        items.append(AccountRow(
            account_id=row["id"], account=row["name"], customer_id=row["customer_id"],
            customer=row["customer"], reseller_id=row["reseller_id"], reseller=row["reseller"],
            bytes_used=row["bytes_used"], quota_bytes=quota, own_quota_bytes=row["own_quota"],
            percent_used=_percent(row["bytes_used"], quota),
            quota_percent=float(value), quota_percent_from=source))
    return AccountPage(items, int(total), offset, limit)


def account(session: Session, scope: Scope, account_id: str) -> AccountRow | None:
    found = accounts(session, scope, account_id=account_id, limit=1).items
    return found[0] if found else None


def job_names(session: Session, scope: Scope, account_id: str) -> list[str]:
    """The account's jobs by name (empty when the account is not in scope)."""
    return list(session.execute(
        sql_select(_JOBS.c.name).join(_ACCOUNTS, _ACCOUNTS.c.id == _JOBS.c.account_id)
        .where(_JOBS.c.account_id == account_id,
               scope.where(_ACCOUNTS.c.reseller_id, _ACCOUNTS.c.customer_id))
        .order_by(_JOBS.c.name)).scalars())
