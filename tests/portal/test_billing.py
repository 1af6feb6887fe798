"""The billing CSV: a header row, every monthly line, formulas in names defused, nothing of
another tenant (the monthly table is scoped in its query)."""

from __future__ import annotations

import csv
import io
from datetime import date

from services.portal.queries import billing
from services.portal.queries.usage import monthly_usage
from shared.db import Database
from shared.scopes import Scope
from tests.portal.support import add_usage, scope_of
from tests.support import make_account

NOV1, NOV30 = date(2026, 11, 1), date(2026, 11, 30)


def test_csv_has_a_header_and_defuses_formulas_in_names(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="=HYPERLINK(\"x\")", name="a,b")
    add_usage(db, acme, NOV1, 5, None)
    add_usage(db, acme, date(2026, 11, 2), 7, 100)
    with db.session() as session:
        text = billing.as_csv(monthly_usage(session, Scope.everything(), NOV1, NOV30))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(billing.CSV_COLUMNS)
    assert rows[1][:3] == ["2026-11", "'=HYPERLINK(\"x\")", "a,b"]
    assert rows[1][5:] == ["2", "6", "7", "7", "100"]
    assert len(rows) == 2


def test_csv_of_a_customer_user_holds_their_accounts_only(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme", name="fileserver")
    globex = make_account(db, reseller="MSP", customer="Globex", name="mail")
    add_usage(db, acme, NOV1, 5)
    add_usage(db, globex, NOV1, 9)
    with db.session() as session:
        text = billing.as_csv(monthly_usage(session, scope_of(acme), NOV1, NOV30))
    rows = list(csv.reader(io.StringIO(text)))
    assert [r[2] for r in rows[1:]] == ["fileserver"]
