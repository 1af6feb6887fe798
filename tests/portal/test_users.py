"""Portal users and the alert page's query on SQLite and PostgreSQL: roles become scopes, and
the query's scope filter hides other tenants' alerts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from services.notifier.tables import DeliveryAttempt, Notification
from services.portal import passwords, users
from services.portal.queries.alert_detail import alert_detail
from services.portal.users import Role, UserError, Viewer
from shared.db import Database
from shared.events import utcnow
from shared.scopes import Scope
from tests.portal.site import PASSWORD, seed_alert, tenants


def test_roles_become_scopes(db: Database) -> None:
    t = tenants(db)
    with db.session() as session:
        op = users.add(session, "Op@Example.com", Role.operator, PASSWORD)
        staff = users.add(session, "staff@one.example", Role.reseller, None,
                          reseller=t.acme.reseller.id)
        it = users.add(session, "it@acme.example", Role.customer, PASSWORD,
                       reseller="Reseller One", customer="Acme", read_only=True)
        with pytest.raises(UserError, match="exists already"):
            users.add(session, "OP@example.com", Role.operator, PASSWORD)
    assert Viewer.of(op).scope == Scope.everything() and op.email == "op@example.com"
    assert Viewer.of(staff).scope == Scope.of_reseller(t.acme.reseller.id)
    assert Viewer.of(it).scope == Scope.of_customer(t.acme.reseller.id, t.acme.customer.id)
    assert Viewer.of(it).read_only and staff.password_hash is None
    with db.session() as session:
        found = users.find(session, " IT@acme.example ")
        assert found is not None and passwords.verify(found.password_hash, PASSWORD)
        users.set_password(session, "it@acme.example", "a different password")
    with db.session() as session:
        again = users.require(session, "it@acme.example")
        assert again.session_epoch == 1
        assert not passwords.verify(again.password_hash, PASSWORD)
        users.remove(session, "it@acme.example")
    with db.session() as session:
        assert users.find(session, "it@acme.example") is None
        total, rows = users.listing(session, None, 0)
        assert total == 2 and [r.email for r in rows] == ["op@example.com", "staff@one.example"]


def test_the_alert_page_query_is_scoped(db: Database) -> None:
    t = tenants(db)
    alert = seed_alert(db, t.acme, "nightly")
    with db.session() as session:
        sent = Notification(key="k1", fingerprint=alert.fingerprint, sequence=1,
                            account_id=t.acme.account.id, channel="email",
                            target="ops@acme.example", status="sent", attempts=2)
        session.add(sent)
        session.flush()
        assert sent.id is not None
        session.add(DeliveryAttempt(notification_id=sent.id, status="retry",
                                    error="450 try later"))
        session.add(DeliveryAttempt(notification_id=sent.id, status="sent", http_status=202,
                                    at=utcnow() + timedelta(minutes=5)))
    acme = Scope.of_customer(t.acme.reseller.id, t.acme.customer.id)
    globex = Scope.of_customer(t.globex.reseller.id, t.globex.customer.id)
    with db.session() as session:
        for ref in (alert.id, alert.fingerprint):
            found = alert_detail(session, acme, ref)
            assert found is not None and found.account == "fileserver"
            assert alert_detail(session, globex, ref) is None
            assert alert_detail(session, Scope.of_reseller(t.other.reseller.id), ref) is None
        detail = alert_detail(session, Scope.everything(), alert.fingerprint)
    assert detail is not None
    assert [(n.channel, n.target, n.attempts) for n in detail.notifications] == [
        ("email", "ops@acme.example", 2)]
    assert [n.last_http_status for n in detail.notifications] == [202]  # the latest attempt's
    assert [t.state for t in detail.transitions] == ["firing"]


def test_hostile_addresses_are_never_a_server_error(db: Database, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.portal.site import add_user, log_in, portal_app

    add_user(db, "op@example.com", Role.operator)
    with TestClient(portal_app(db, tmp_path)) as client:
        log_in(client, "op@example.com")
        for path in ("/jobs/%00", "/alerts/a%00b", "/accounts/%00", "/?q=%00",
                     "/?customer=%00", "/jobs/x?before=%00", "/?state=%00"):
            answer = client.get(path)
            # PostgreSQL refuses NUL in text (400); SQLite just finds nothing.
            assert answer.status_code in (200, 400, 404), (path, answer.status_code)
