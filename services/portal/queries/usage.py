"""Stored bytes over time, per account and per customer, and the monthly table an MSP bills
from: read from the usage history (one row per account and day, the day's last report)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlmodel import Session

from services.portal.history.tables import HistoryUsageDay
from shared.db import core_table
from shared.scopes import Scope
from shared.tenancy import Account, Customer

_USAGE = core_table(HistoryUsageDay)


@dataclass(frozen=True)
class UsagePoint:
    """An account's storage on a day."""

    day: date
    account_id: str
    account_name: str
    customer_id: str
    customer_name: str
    bytes_used: int
    quota_bytes: int | None


@dataclass(frozen=True)
class CustomerUsagePoint:
    """A customer's storage on a day: the sum over its accounts that reported that day."""

    day: date
    customer_id: str
    customer_name: str
    bytes_used: int
    accounts: int  # how many accounts reported that day


@dataclass(frozen=True)
class MonthlyUsage:
    """An account's month: what a bill is made of."""

    month: str  # YYYY-MM
    account_id: str
    account_name: str
    customer_id: str
    customer_name: str
    peak_bytes: int
    average_bytes: int  # over the days it reported
    last_bytes: int  # on the last day it reported
    quota_bytes: int | None  # on that day
    days_reported: int


def account_usage(session: Session, scope: Scope, since: date, until: date, *,
                  customer_id: str | None = None, account_id: str | None = None
                  ) -> list[UsagePoint]:
    """Every account's storage per day in [since, until], by customer, account and day."""
    accounts, customers = core_table(Account), core_table(Customer)
    statement = (
        sql_select(_USAGE.c.day, _USAGE.c.account_id, accounts.c.name.label("account_name"),
                   _USAGE.c.customer_id, customers.c.name.label("customer_name"),
                   _USAGE.c.bytes_used, _USAGE.c.quota_bytes)
        .join(accounts, accounts.c.id == _USAGE.c.account_id)
        .join(customers, customers.c.id == _USAGE.c.customer_id)
        .where(scope.where(_USAGE.c.reseller_id, _USAGE.c.customer_id),
               _USAGE.c.day >= since, _USAGE.c.day <= until)
        .order_by(customers.c.name, accounts.c.name, _USAGE.c.account_id, _USAGE.c.day))
    if customer_id is not None:
        statement = statement.where(_USAGE.c.customer_id == customer_id)
    if account_id is not None:
        statement = statement.where(_USAGE.c.account_id == account_id)
    return [UsagePoint(**row) for row in session.execute(statement).mappings()]


def customer_usage(session: Session, scope: Scope, since: date, until: date
                   ) -> list[CustomerUsagePoint]:
    """Each customer's storage per day in [since, until], summed in the database."""
    customers = core_table(Customer)
    statement = (
        sql_select(_USAGE.c.day, _USAGE.c.customer_id, customers.c.name.label("customer_name"),
                   func.sum(_USAGE.c.bytes_used).label("bytes_used"),
                   func.count().label("accounts"))
        .join(customers, customers.c.id == _USAGE.c.customer_id)
        .where(scope.where(_USAGE.c.reseller_id, _USAGE.c.customer_id),
               _USAGE.c.day >= since, _USAGE.c.day <= until)
        .group_by(_USAGE.c.day, _USAGE.c.customer_id, customers.c.name)
        .order_by(customers.c.name, _USAGE.c.customer_id, _USAGE.c.day))
    return [CustomerUsagePoint(day=row.day, customer_id=row.customer_id,
                               customer_name=row.customer_name, bytes_used=int(row.bytes_used),
                               accounts=row.accounts)
            for row in session.execute(statement)]


def monthly_usage(session: Session, scope: Scope, since: date, until: date, *,
                  customer_id: str | None = None) -> list[MonthlyUsage]:
    """Per account and calendar month in [since, until]: peak, average and last storage."""
    points = account_usage(session, scope, since, until, customer_id=customer_id)
    months: dict[tuple[str, str], list[UsagePoint]] = defaultdict(list)
    for point in points:
        months[(point.day.strftime("%Y-%m"), point.account_id)].append(point)
    table = []
    for (month, _), days in months.items():
        last = max(days, key=lambda p: p.day)
        table.append(MonthlyUsage(
            month=month, account_id=last.account_id, account_name=last.account_name,
            customer_id=last.customer_id, customer_name=last.customer_name,
            peak_bytes=max(p.bytes_used for p in days),
            average_bytes=round(sum(p.bytes_used for p in days) / len(days)),
            last_bytes=last.bytes_used, quota_bytes=last.quota_bytes, days_reported=len(days)))
    table.sort(key=lambda m: (m.month, m.customer_name, m.account_name, m.account_id))
    return table
