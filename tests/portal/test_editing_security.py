"""Every editing form of the management pages: refused without a CSRF token (403), refused for a
read-only user (403), and another tenant's id answers 404 — and in each case nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import SQLModel, select

from services.evaluator.tables import ThresholdOverride
from services.notifier import admin
from services.notifier.tables import BrandRow, NotifySettings, Silence, WebhookEndpoint
from services.portal.users import Role
from shared.db import Database
from shared.events import utcnow
from shared.tenancy import Account, IssuedAccount
from tests.portal.site import Tenants, add_user, csrf_token, log_in
from tests.portal.support import add_alert


@dataclass(frozen=True)
class Form:
    """An editing form: where it posts (for a tenant's account) and what it sends."""

    name: str
    path: Callable[[IssuedAccount, dict[str, str]], str]
    data: Callable[[IssuedAccount], dict[str, str]]


def _ids(db: Database, issued: IssuedAccount) -> dict[str, str]:
    """An alert, a silence and a webhook of the tenant, for the forms that name one."""
    now = utcnow()
    fp = add_alert(db, issued, at=now, job=f"job-{issued.account.id[:6]}")
    with db.session() as session:
        silence = admin.add_silence(session, reseller_id=issued.reseller.id,
                                    customer_id=issued.customer.id,
                                    account_id=issued.account.id, starts_at=now,
                                    ends_at=now + timedelta(hours=1))
        hook = WebhookEndpoint(id=f"wh{issued.account.id[:10]}", reseller_id=issued.reseller.id,
                               customer_id=issued.customer.id,
                               url="https://tickets.example/hook", format="alertmanager")
        session.add(hook)
        return {"fingerprint": fp, "silence": silence.id, "webhook": hook.id}


FORMS = [
    Form("silence", lambda a, ids: f"/alerts/{ids['fingerprint']}/silence",
         lambda a: {"hours": "1", "level": "account"}),
    Form("un-silence", lambda a, ids: f"/silences/{ids['silence']}/end", lambda a: {}),
    Form("threshold", lambda a, ids: f"/accounts/{a.account.id}/thresholds",
         lambda a: {"name": "quota_percent", "value": "50"}),
    Form("threshold unset", lambda a, ids: f"/accounts/{a.account.id}/thresholds/unset",
         lambda a: {"name": "grace_seconds"}),
    Form("reminder interval", lambda a, ids: f"/accounts/{a.account.id}/repeat",
         lambda a: {"hours": "1"}),
    Form("quota", lambda a, ids: f"/accounts/{a.account.id}/quota",
         lambda a: {"gigabytes": "500"}),
    Form("webhook add", lambda a, ids: "/settings/webhooks",
         lambda a: {"reseller_id": a.reseller.id, "customer_id": a.customer.id,
                    "url": "https://evil.example/hook", "format": "alertmanager"}),
    Form("webhook remove", lambda a, ids: f"/settings/webhooks/{ids['webhook']}/remove",
         lambda a: {}),
    Form("contacts", lambda a, ids: "/settings/contacts",
         lambda a: {"reseller_id": a.reseller.id, "customer_id": a.customer.id,
                    "emails": "evil@example.com"}),
    Form("branding", lambda a, ids: "/settings/branding",
         lambda a: {"reseller_id": a.reseller.id, "name": "Evil"}),
    Form("preferences", lambda a, ids: f"/accounts/{a.account.id}/preferences",
         lambda a: {"mails": "evil@example.com", "quota_percent": "1"}),
]


def snapshot(db: Database) -> tuple[object, ...]:
    """Everything the forms could change."""
    with db.session() as session:
        def rows(model: type[SQLModel], *columns: str) -> list[tuple[object, ...]]:
            found: list[SQLModel] = list(session.exec(select(model)).all())
            return sorted((tuple(getattr(r, c) for c in columns) for r in found), key=repr)
        return (rows(ThresholdOverride, "scope_id", "name", "value"),
                rows(Silence, "id", "ends_at"), rows(WebhookEndpoint, "id", "enabled"),
                rows(NotifySettings, "customer_id", "repeat_interval_seconds"),
                [r.contacts for r in session.exec(select(NotifySettings)).all()],
                rows(BrandRow, "reseller_id", "name"), rows(Account, "id", "quota_bytes"),
                [a.contacts for a in session.exec(select(Account)).all()])


@pytest.fixture
def staff(client: TestClient, sqlite_db: Database, three_tenants: Tenants) -> TestClient:
    """Reseller One's staff (allowed every form for its own tenants), logged in."""
    add_user(sqlite_db, "staff@one.example", Role.reseller, reseller="Reseller One")
    log_in(client, "staff@one.example")
    return client


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_a_form_without_its_csrf_token_is_refused(form: Form, staff: TestClient,
                                                  sqlite_db: Database,
                                                  three_tenants: Tenants) -> None:
    acme = three_tenants.acme
    ids = _ids(sqlite_db, acme)
    before = snapshot(sqlite_db)
    answer = staff.post(form.path(acme, ids), data=form.data(acme), follow_redirects=False)
    assert answer.status_code == 403
    assert snapshot(sqlite_db) == before


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_a_read_only_user_is_refused(form: Form, client: TestClient, sqlite_db: Database,
                                     three_tenants: Tenants) -> None:
    acme = three_tenants.acme
    ids = _ids(sqlite_db, acme)
    add_user(sqlite_db, "viewer@one.example", Role.reseller, reseller="Reseller One",
             read_only=True)
    log_in(client, "viewer@one.example")
    page = client.get("/settings")
    assert "<form method=\"post\" action=\"/settings/" not in page.text  # no forms shown
    before = snapshot(sqlite_db)
    answer = client.post(form.path(acme, ids), data={**form.data(acme),
                                                     "csrf_token": csrf_token(page.text)},
                         follow_redirects=False)
    assert answer.status_code == 403
    assert snapshot(sqlite_db) == before


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_another_resellers_ids_are_not_found(form: Form, staff: TestClient,
                                             sqlite_db: Database,
                                             three_tenants: Tenants) -> None:
    other = three_tenants.other  # Reseller Two's
    ids = _ids(sqlite_db, other)
    page = staff.get("/settings")
    before = snapshot(sqlite_db)
    answer = staff.post(form.path(other, ids), data={**form.data(other),
                                                     "csrf_token": csrf_token(page.text)},
                        follow_redirects=False)
    assert answer.status_code == 404
    assert snapshot(sqlite_db) == before


@pytest.mark.parametrize("path", [
    "/accounts/{account}/settings", "/accounts/{account}/preferences",
    "/accounts/{account}/settings?job=nightly"])
def test_another_customers_pages_are_not_found(path: str, client: TestClient,
                                               sqlite_db: Database,
                                               three_tenants: Tenants) -> None:
    add_user(sqlite_db, "user@acme.example", Role.customer, reseller="Reseller One",
             customer="Acme")
    log_in(client, "user@acme.example")
    assert client.get(path.format(account=three_tenants.acme.account.id)).status_code in (
        200, 404)  # its own: shown (the job may not exist)
    answer = client.get(path.format(account=three_tenants.globex.account.id))
    assert answer.status_code == 404
    assert "mailserver" not in answer.text


def test_a_job_name_with_markup_is_shown_escaped(client: TestClient, sqlite_db: Database,
                                                  three_tenants: Tenants) -> None:
    add_alert(sqlite_db, three_tenants.acme, at=utcnow(), job="nightly",
              summary="<script>alert(1)</script> failed")
    add_user(sqlite_db, "op@example.com", Role.operator)
    log_in(client, "op@example.com")
    page = client.get("/alerts")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


@pytest.mark.parametrize("hours", ["nan", "inf", "0", "-1", "10000"])
def test_a_silence_of_no_sensible_length_is_refused(hours: str, staff: TestClient,
                                                   sqlite_db: Database,
                                                   three_tenants: Tenants) -> None:
    ids = _ids(sqlite_db, three_tenants.acme)
    page = staff.get("/alerts")
    before = snapshot(sqlite_db)
    answer = staff.post(f"/alerts/{ids['fingerprint']}/silence",
                        data={"hours": hours, "csrf_token": csrf_token(page.text)})
    assert answer.status_code == 422
    assert snapshot(sqlite_db) == before
