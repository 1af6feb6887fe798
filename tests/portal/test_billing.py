"""Usage and billing: storage over time per customer and account, the monthly table and its CSV,
scoped in the query (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from datetime import date

from services.portal.queries import billing
from shared.db import Database
from shared.scopes import Scope
from tests.portal.support import add_usage, scope_of
from tests.support import make_account

GB = 10**9
NOV1, NOV30 = date(2026, 11, 1), date(2026, 11, 30)


def test_monthly_lines_give_days_average_peak_last_and_quota(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme", name="fileserver")
    add_usage(db, acme, date(2026, 10, 30), 10 * GB, 100 * GB)
    add_usage(db, acme, date(2026, 10, 31), 30 * GB, 100 * GB)
    add_usage(db, acme, date(2026, 11, 1), 20 * GB, 200 * GB)
    add_usage(db, acme, date(2026, 11, 2), 50 * GB, 200 * GB)
    add_usage(db, acme, date(2026, 11, 3), 40 * GB, 200 * GB)
    with db.session() as session:
        lines = billing.monthly(session, scope_of(acme), first=date(2026, 10, 15),
                                last=date(2026, 11, 30))
    assert [(m.month, m.days_reported, m.average_bytes, m.peak_bytes, m.last_bytes,
             m.quota_bytes) for m in lines] == [
        ("2026-10", 2, 20 * GB, 30 * GB, 30 * GB, 100 * GB),
        ("2026-11", 3, round(110 * GB / 3), 50 * GB, 40 * GB, 200 * GB)]
    assert (lines[0].reseller, lines[0].customer, lines[0].account) == (
        "MSP", "Acme", "fileserver")


def test_usage_over_time_sums_a_customers_accounts_and_keeps_tenants_apart(
        db: Database) -> None:
    a1 = make_account(db, reseller="MSP", customer="Acme", name="a1")
    a2 = make_account(db, reseller="MSP", customer="Acme", name="a2")
    globex = make_account(db, reseller="MSP", customer="Globex", name="g1")
    other = make_account(db, reseller="Other", customer="Initech", name="i1")
    for account, used in ((a1, 1), (a2, 2), (globex, 5), (other, 7)):
        add_usage(db, account, date(2026, 11, 1), used * GB)
        add_usage(db, account, date(2026, 11, 2), used * GB * 2)
    with db.session() as session:
        msp = billing.usage_over_time(session, Scope.of_reseller(a1.reseller.id),
                                      since=NOV1, until=NOV30)
        accounts = billing.usage_over_time(session, scope_of(a1), by="account", since=NOV1,
                                           until=NOV30)
        leak = billing.usage_over_time(session, scope_of(a1), account_id=globex.account.id,
                                       since=NOV1, until=NOV30)
        leak_monthly = billing.monthly(session, scope_of(a1), first=date(2026, 11, 1),
                                       last=date(2026, 11, 30), customer_id=globex.customer.id)
    assert [(s.label, [p.bytes_used for p in s.points]) for s in msp] == [
        ("Globex", [5 * GB, 10 * GB]), ("Acme", [3 * GB, 6 * GB])]
    assert [s.label for s in accounts] == ["a2", "a1"]
    assert leak == [] and leak_monthly == []


def test_csv_has_a_header_and_defuses_formulas_in_names(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="=HYPERLINK(\"x\")", name="a,b")
    add_usage(db, acme, date(2026, 11, 1), 5, None)
    with db.session() as session:
        text = billing.as_csv(billing.monthly(session, Scope.everything(),
                                              first=date(2026, 11, 1), last=date(2026, 11, 30)))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(billing.CSV_COLUMNS)
    assert rows[1][:4] == ["2026-11", "MSP", "'=HYPERLINK(\"x\")", "a,b"]
    assert rows[1][-4:] == ["5", "5", "5", ""]
