"""Usage and billing: stored bytes per customer and account over time, a monthly table and its
CSV export — what an MSP bills from.

Read from the run history's ``history_usage_days`` (an account's last usage report of each UTC
day), scoped in the query on the row's own tenant columns. A month's line per account gives the
days it reported, the average and the peak of those days' storage, the last report's storage and
its quota: an MSP billing by average, peak or month-end use finds its figure.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy import ColumnElement, and_, extract, func, select
from sqlmodel import Session, col

from services.portal.history.tables import HistoryUsageDay
from shared.db import core_table
from shared.scopes import Scope
from shared.tenancy import Account, Customer, Reseller

By = Literal["customer", "account"]
USAGE = core_table(HistoryUsageDay)


@dataclass(frozen=True)
class UsagePoint:
    day: date
    bytes_used: int
    quota_bytes: int | None


@dataclass(frozen=True)
class Series:
    """One customer's or account's storage per day (the sum of its accounts' reports)."""

    key: str  # customer or account id
    label: str
    points: list[UsagePoint]


def usage_over_time(session: Session, scope: Scope, *, since: date, until: date,
                    by: By = "customer", customer_id: str | None = None,
                    account_id: str | None = None) -> list[Series]:
    """Stored bytes per day from ``since`` to ``until`` (inclusive), one series per customer
    or account in scope, largest last value first."""
    u = HistoryUsageDay
    key = col(u.customer_id) if by == "customer" else col(u.account_id)
    label = col(Customer.name) if by == "customer" else col(Account.name)
    query = (select(key, label, col(u.day), func.sum(u.bytes_used), func.sum(u.quota_bytes))
             .join(Account, col(Account.id) == u.account_id)
             .join(Customer, col(Customer.id) == u.customer_id)
             .where(scope.where(USAGE.c.reseller_id, USAGE.c.customer_id),
                    col(u.day) >= since, col(u.day) <= until)
             .group_by(key, label, col(u.day)).order_by(key, col(u.day)))
    if customer_id is not None:
        query = query.where(col(u.customer_id) == customer_id)
    if account_id is not None:
        query = query.where(col(u.account_id) == account_id)
    series: dict[str, Series] = {}
    for row_key, row_label, day, used, quota in session.execute(query).all():
        found = series.setdefault(row_key, Series(row_key, row_label, []))
        found.points.append(UsagePoint(day, int(used), int(quota) if quota is not None else None))
    return sorted(series.values(), key=lambda s: (-s.points[-1].bytes_used, s.label))


@dataclass(frozen=True)
class MonthLine:
    """One account's storage in one month."""

    month: str  # YYYY-MM
    reseller: str
    customer_id: str
    customer: str
    account_id: str
    account: str
    days_reported: int
    average_bytes: int
    peak_bytes: int
    last_bytes: int
    quota_bytes: int | None


def monthly(session: Session, scope: Scope, *, first: date, last: date,
            customer_id: str | None = None) -> list[MonthLine]:
    """Per month and account in scope, from ``first``'s month to ``last``'s: days reported,
    average, peak and last storage, and the quota of the last report. Ordered by month, then
    reseller, customer and account name."""
    u = HistoryUsageDay
    year, month = extract("year", col(u.day)), extract("month", col(u.day))
    where: list[ColumnElement[bool]] = [scope.where(USAGE.c.reseller_id, USAGE.c.customer_id),
             col(u.day) >= first.replace(day=1), col(u.day) <= last]
    if customer_id is not None:
        where.append(col(u.customer_id) == customer_id)
    stats = (select(col(u.account_id).label("account_id"), year.label("y"), month.label("m"),
                    func.count().label("days"), func.avg(u.bytes_used).label("avg"),
                    func.max(u.bytes_used).label("peak"), func.max(u.day).label("last_day"))
             .where(*where).group_by(col(u.account_id), year, month).subquery())
    query = (select(stats.c.y, stats.c.m, col(Reseller.name), col(Customer.id),
                    col(Customer.name), col(Account.id), col(Account.name), stats.c.days,
                    stats.c.avg, stats.c.peak, col(u.bytes_used), col(u.quota_bytes))
             .join(u, and_(col(u.account_id) == stats.c.account_id,
                           col(u.day) == stats.c.last_day))
             .join(Account, col(Account.id) == stats.c.account_id)
             .join(Customer, col(Customer.id) == Account.customer_id)
             .join(Reseller, col(Reseller.id) == Account.reseller_id)
             .order_by(stats.c.y, stats.c.m, col(Reseller.name), col(Customer.name),
                       col(Account.name)))
    return [MonthLine(f"{int(y):04d}-{int(m):02d}", reseller, cust_id, cust, acc_id, acc,
                      int(days), round(float(avg)), int(peak), int(last_bytes),
                      int(quota) if quota is not None else None)
            for y, m, reseller, cust_id, cust, acc_id, acc, days, avg, peak, last_bytes, quota
            in session.execute(query).all()]


CSV_COLUMNS = ("month", "reseller", "customer", "account", "account_id", "days_reported",
               "average_bytes", "peak_bytes", "last_bytes", "quota_bytes")


def as_csv(lines: Iterable[MonthLine]) -> str:
    """The monthly table as CSV (RFC 4180, a header row). Names a spreadsheet would take for a
    formula (starting with = + - @ or a tab/CR) are prefixed with a quote."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow([line.month, _inert(line.reseller), _inert(line.customer),
                         _inert(line.account), line.account_id, line.days_reported,
                         line.average_bytes, line.peak_bytes, line.last_bytes,
                         "" if line.quota_bytes is None else line.quota_bytes])
    return out.getvalue()


def _inert(text: str) -> str:
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
