"""The alert log: open alerts first, each alert's history and notifications, and nothing of
another tenant (scoped in the query) — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from services.portal.queries import alert_log
from services.portal.queries.alert_log import AlertFilters, SentFilters
from shared.db import Database
from shared.scopes import Scope
from tests.portal.support import FIRED_AT as AT
from tests.portal.support import add_alert, add_notification, add_suppressed, scope_of
from tests.support import make_account


def test_open_alerts_come_first_and_resolved_ones_are_in_the_log(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme", name="fileserver")
    old = add_alert(db, acme, job="weekly", state="resolved", at=AT)
    new = add_alert(db, acme, job="nightly", state="firing", at=AT - timedelta(days=3))
    with db.session() as session:
        log = alert_log.alerts(session, scope_of(acme))
        firing = alert_log.open_alerts(session, scope_of(acme))
    assert [a.fingerprint for a in log.items] == [new, old]
    assert log.total == 2
    assert [a.fingerprint for a in firing.items] == [new]
    entry = firing.items[0]
    assert (entry.account, entry.customer, entry.job) == ("fileserver", "Acme", "nightly")
    assert entry.last_notified_at is not None and entry.notification_count == 1


def test_filters_narrow_by_kind_and_text_with_like_characters_taken_literally(
        db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme", name="fileserver")
    add_alert(db, acme, kind="failed_run", job="nightly", at=AT, summary="disk 100% full")
    add_alert(db, acme, kind="missed_run", job="weekly", at=AT, summary="no run since monday")
    with db.session() as session:
        by_kind = alert_log.alerts(session, Scope.everything(), AlertFilters(kind="missed_run"))
        percent = alert_log.alerts(session, Scope.everything(), AlertFilters(text="100%"))
        wildcard = alert_log.alerts(session, Scope.everything(), AlertFilters(text="%"))
    assert [a.job for a in by_kind.items] == ["weekly"]
    assert [a.job for a in percent.items] == ["nightly"]
    assert [a.job for a in wildcard.items] == ["nightly"]


def test_history_lists_transitions_and_every_notification_with_its_retries(
        db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme")
    fp = add_alert(db, acme, state="resolved", at=AT)
    add_notification(db, acme, fp, to="ops@acme.example", at=AT, failures=2)
    add_notification(db, acme, fp, to="ops@acme.example", at=AT + timedelta(hours=1),
                     sequence=2, transition="resolved", status="dead")
    add_suppressed(db, acme, fp, reason="silenced", at=AT, sequence=3)
    with db.session() as session:
        history = alert_log.alert_history(session, scope_of(acme), fp)
    assert history is not None
    assert [(c.sequence, c.state) for c in history.changes] == [(1, "firing"), (2, "resolved")]
    first, second = history.deliveries
    assert (first.to, first.channel, first.delivered, first.retries) == (
        "ops@acme.example", "email", True, 2)
    assert [a.status for a in first.attempts] == ["retry", "retry", "sent"]
    assert (second.transition, second.delivered, second.retries) == ("resolved", False, 0)
    assert [n.reason for n in history.not_notified] == ["silenced"]


def test_another_tenants_alert_and_notifications_are_not_found(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme")
    globex = make_account(db, reseller="MSP", customer="Globex")
    other_msp = make_account(db, reseller="Other MSP", customer="Initech")
    fp = add_alert(db, globex, at=AT)
    add_notification(db, globex, fp, to="it@globex.example", at=AT)
    with db.session() as session:
        assert alert_log.alert_history(session, scope_of(acme), fp) is None
        assert alert_log.alert_history(
            session, Scope.of_reseller(other_msp.reseller.id), fp) is None
        assert alert_log.alert_history(session, Scope.of_reseller(globex.reseller.id), fp)
        assert alert_log.alerts(session, scope_of(acme)).total == 0
        assert alert_log.notifications_sent(session, scope_of(acme)).total == 0
        sent = alert_log.notifications_sent(session, scope_of(globex))
    assert [(n.to, n.account) for n in sent.items] == [("it@globex.example",
                                                        globex.account.name)]


def test_notifications_sent_filter_by_status_and_channel(db: Database) -> None:
    acme = make_account(db, reseller="MSP", customer="Acme")
    fp = add_alert(db, acme, at=AT)
    add_notification(db, acme, fp, to="a@acme.example", at=AT)
    add_notification(db, acme, fp, to="b@acme.example", at=AT, status="dead")
    with db.session() as session:
        dead = alert_log.notifications_sent(session, scope_of(acme), SentFilters(status="dead"))
        hooks = alert_log.notifications_sent(session, scope_of(acme),
                                             SentFilters(channel="webhook"))
    assert [n.to for n in dead.items] == ["b@acme.example"]
    assert hooks.total == 0
