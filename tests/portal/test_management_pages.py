"""The management pages on the real app and database: alerts with silence and un-silence,
notifications sent, quotas and thresholds, usage and its CSV, settings, self-care (database
source). Each page shows the viewer's tenants only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import select

from services.evaluator import admin as evaluator
from services.notifier.policy.silences import active_for
from services.notifier.tables import BrandRow, NotifySettings
from services.portal.users import Role
from shared.db import Database
from shared.events import utcnow
from shared.tenancy import Account, get_or_create_job
from tests.portal.site import Tenants, add_user, csrf_token, log_in
from tests.portal.support import add_alert, add_notification, add_usage


def customer_of(client: TestClient, db: Database, tenants: Tenants, *,
                read_only: bool = False) -> None:
    add_user(db, "user@acme.example", Role.customer, reseller="Reseller One", customer="Acme",
             read_only=read_only)
    log_in(client, "user@acme.example")


def test_alerts_page_lists_own_alerts_and_silences_and_unsilences_one(
        client: TestClient, sqlite_db: Database, three_tenants: Tenants) -> None:
    now = utcnow()
    mine = add_alert(sqlite_db, three_tenants.acme, at=now - timedelta(hours=1),
                     summary="Backup job nightly failed: disk full")
    add_alert(sqlite_db, three_tenants.globex, at=now, summary="Globex secret failure")
    add_notification(sqlite_db, three_tenants.acme, mine, to="ops@acme.example", at=now,
                     failures=1)
    customer_of(client, sqlite_db, three_tenants)

    listing = client.get("/alerts")
    assert listing.status_code == 200
    assert "disk full" in listing.text and "Globex secret" not in listing.text
    answer = client.post(f"/alerts/{mine}/silence",
                         data={"hours": "4", "level": "account", "reason": "disk swap",
                               "csrf_token": csrf_token(listing.text)}, follow_redirects=False)
    assert answer.status_code == 303
    with sqlite_db.session() as session:
        [silence] = active_for(session, three_tenants.acme.account.tenant(), utcnow())
        assert silence.reason == "disk swap"
        silence_id = silence.id
    page = client.get("/alerts?done=silenced")
    assert "disk swap" in page.text and f"/silences/{silence_id}/end" in page.text
    ended = client.post(f"/silences/{silence_id}/end",
                        data={"csrf_token": csrf_token(page.text)}, follow_redirects=False)
    assert ended.status_code == 303
    with sqlite_db.session() as session:
        assert active_for(session, three_tenants.acme.account.tenant(), utcnow()) == []

    sent = client.get("/notifications")
    assert "ops@acme.example" in sent.text


def test_a_threshold_edited_on_the_quotas_page_is_in_force(
        client: TestClient, sqlite_db: Database, three_tenants: Tenants) -> None:
    acme = three_tenants.acme
    with sqlite_db.session() as session:
        get_or_create_job(session, acme.account.id, "nightly")
    add_usage(sqlite_db, acme, utcnow().date() - timedelta(days=1), 40, 100)
    add_usage(sqlite_db, acme, utcnow().date(), 60, 100)
    customer_of(client, sqlite_db, three_tenants)

    # The account's and the job's pages lead here.
    assert f'href="/accounts/{acme.account.id}/settings"' in client.get(
        f"/accounts/{acme.account.id}").text
    listing = client.get("/quotas")
    assert "fileserver" in listing.text and "mailserver" not in listing.text
    page = client.get(f"/accounts/{acme.account.id}/settings")
    assert page.status_code == 200
    assert "<svg" in page.text and "<polyline" in page.text
    saved = client.post(f"/accounts/{acme.account.id}/thresholds",
                        data={"name": "quota_percent", "value": "75",
                              "csrf_token": csrf_token(page.text)}, follow_redirects=False)
    assert saved.status_code == 303
    job_page = client.get(f"/accounts/{acme.account.id}/settings?job=nightly")
    saved = client.post(f"/accounts/{acme.account.id}/thresholds",
                        data={"name": "failures_tolerance", "value": "3", "job": "nightly",
                              "csrf_token": csrf_token(job_page.text)}, follow_redirects=False)
    assert saved.status_code == 303
    with sqlite_db.session() as session:
        values = evaluator.effective(session, acme.account.id, "nightly").values
    assert values["quota_percent"] == (75.0, "account")
    assert values["failures_tolerance"] == (3, "job")
    bad = client.post(f"/accounts/{acme.account.id}/thresholds",
                      data={"name": "quota_percent", "value": "lots",
                            "csrf_token": csrf_token(page.text)})
    assert bad.status_code == 422 and "quota_percent" in bad.text
    # The reminder interval and the quota are the reseller's to set: no form, refused if posted.
    for form, data in (("repeat", {"hours": "1"}), ("quota", {"gigabytes": "9000"})):
        assert 'action="/accounts/' + acme.account.id + f'/{form}"' not in page.text
        refused = client.post(f"/accounts/{acme.account.id}/{form}",
                              data={**data, "csrf_token": csrf_token(page.text)})
        assert refused.status_code == 403


def test_reseller_staff_set_the_reminder_interval(client: TestClient, sqlite_db: Database,
                                                  three_tenants: Tenants) -> None:
    add_user(sqlite_db, "staff@one.example", Role.reseller, reseller="Reseller One")
    log_in(client, "staff@one.example")
    acme = three_tenants.acme
    page = client.get(f"/accounts/{acme.account.id}/settings")
    answer = client.post(f"/accounts/{acme.account.id}/repeat",
                         data={"hours": "2", "csrf_token": csrf_token(page.text)},
                         follow_redirects=False)
    assert answer.status_code == 303
    with sqlite_db.session() as session:
        rows = session.exec(select(NotifySettings)).all()
    assert [(r.customer_id, r.repeat_interval_seconds) for r in rows] == [
        (acme.customer.id, 7200.0)]
    # And the account's quota, in GB.
    answer = client.post(f"/accounts/{acme.account.id}/quota",
                         data={"gigabytes": "1.5", "csrf_token": csrf_token(page.text)},
                         follow_redirects=False)
    assert answer.status_code == 303
    assert 'value="1.5"' in client.get(f"/accounts/{acme.account.id}/settings").text
    for bad in ("nan", "-1", "lots"):
        assert client.post(f"/accounts/{acme.account.id}/quota", data={
            "gigabytes": bad, "csrf_token": csrf_token(page.text)}).status_code == 422
    with sqlite_db.session() as session:
        account = session.get(Account, acme.account.id)
        assert account is not None and account.quota_bytes == 1_500_000_000
    client.post(f"/accounts/{acme.account.id}/quota",
                data={"gigabytes": "", "csrf_token": csrf_token(page.text)})
    with sqlite_db.session() as session:
        account = session.get(Account, acme.account.id)
        assert account is not None and account.quota_bytes is None


def test_usage_page_and_csv_show_own_accounts(client: TestClient, sqlite_db: Database,
                                              three_tenants: Tenants) -> None:
    today = utcnow().date()
    add_usage(sqlite_db, three_tenants.acme, today, 5_000_000_000, 10_000_000_000)
    add_usage(sqlite_db, three_tenants.globex, today, 7_000_000_000)
    customer_of(client, sqlite_db, three_tenants)
    page = client.get("/usage")
    assert page.status_code == 200
    assert "fileserver" in page.text and "mailserver" not in page.text
    assert "5.0 GB" in page.text
    export = client.get(f"/usage.csv?from={today:%Y-%m}&to={today:%Y-%m}")
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(export.text)))
    assert [r[2] for r in rows[1:]] == ["fileserver"]
    assert client.get("/usage?from=2026-13").status_code == 422
    assert client.get("/usage?from=2026-12&to=2026-11").status_code == 422
    assert client.get("/usage.csv?from=9999-12&to=9999-12").status_code == 200


def test_settings_pages_for_a_customer_and_reseller_staff(
        client: TestClient, sqlite_db: Database, three_tenants: Tenants) -> None:
    customer_of(client, sqlite_db, three_tenants)
    page = client.get("/settings")
    assert page.status_code == 200
    assert "Branding" not in page.text  # a customer user changes no branding
    saved = client.post("/settings/contacts", data={
        "reseller_id": three_tenants.acme.reseller.id,
        "customer_id": three_tenants.acme.customer.id, "emails": "it@acme.example\n",
        "csrf_token": csrf_token(page.text)}, follow_redirects=False)
    assert saved.status_code == 303
    refused = client.post("/settings/branding", data={
        "reseller_id": three_tenants.acme.reseller.id, "name": "Hijacked",
        "csrf_token": csrf_token(page.text)})
    assert refused.status_code == 404
    added = client.post("/settings/webhooks", data={
        "reseller_id": three_tenants.acme.reseller.id,
        "customer_id": three_tenants.acme.customer.id, "url": "https://tickets.acme.example/h",
        "format": "backstop", "csrf_token": csrf_token(page.text)})
    assert added.status_code == 200
    assert "whsec_" in added.text and "tickets.acme.example" in added.text
    with sqlite_db.session() as session:
        assert session.get(BrandRow, three_tenants.acme.reseller.id) is None
        rows = session.exec(select(NotifySettings)).all()
    assert [r.contacts for r in rows] == [["it@acme.example"]]


def test_self_care_in_database_mode_changes_the_accounts_contacts(
        client: TestClient, sqlite_db: Database, three_tenants: Tenants) -> None:
    customer_of(client, sqlite_db, three_tenants)
    acme = three_tenants.acme
    page = client.get(f"/accounts/{acme.account.id}/preferences")
    assert page.status_code == 200
    assert "Warn the customer" not in page.text  # the database keeps no flag
    saved = client.post(f"/accounts/{acme.account.id}/preferences", data={
        "mails": "new@acme.example", "quota_percent": "70",
        "csrf_token": csrf_token(page.text)}, follow_redirects=False)
    assert saved.status_code == 303
    with sqlite_db.session() as session:
        account = session.get(Account, acme.account.id)
        assert account is not None and account.contacts == ["new@acme.example"]
        assert evaluator.effective(session, acme.account.id).values["quota_percent"] == (
            70.0, "account")
