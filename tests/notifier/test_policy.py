"""Policy: silences, inhibition, reminders, grouping, and the queryable notify state."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from services.notifier import admin, silences
from services.notifier.tables import AlertNotifyState, NotifyTransition
from shared.db import Database
from tests.notifier.support import Clock, MemoryMailer, alert, make_notifier, settle
from tests.support import make_account, tenant_of


def _transitions(db: Database) -> list[NotifyTransition]:
    with db.session() as s:
        return list(s.exec(select(NotifyTransition).order_by(col(NotifyTransition.id))).all())


def _state(db: Database, fingerprint: str) -> AlertNotifyState:
    with db.session() as s:
        row = s.get(AlertNotifyState, fingerprint)
        assert row is not None
        return row


async def test_silence_per_customer_suppresses_and_records(db: Database):
    issued = make_account(db, contacts=["ops@example.com"])
    other = make_account(db, customer="Other", contacts=["other@example.com"])
    clock = Clock()
    with db.session() as s:
        silences.add(s, reseller_id=issued.reseller.id, customer_id=issued.customer.id,
                     starts_at=clock.now - timedelta(minutes=1),
                     ends_at=clock.now + timedelta(hours=1), reason="maintenance")
    mailer = MemoryMailer()
    notifier = make_notifier(db, clock=clock, mailer=mailer)
    silenced = alert(tenant_of(issued))
    await notifier.handle(silenced)
    await notifier.handle(alert(tenant_of(other)))
    await settle(notifier)
    assert [str(m["To"]) for m in mailer.sent] == ["other@example.com"]
    assert [t.suppressed_reason for t in _transitions(db)] == ["silenced", None]
    # Nobody heard of the problem, so its resolve is not sent either.
    await notifier.handle(alert(tenant_of(issued), state="resolved", sequence=2,
                                fingerprint=silenced.fingerprint))
    await settle(notifier)
    assert len(mailer.sent) == 1 and _transitions(db)[-1].suppressed_reason == "not_notified"


async def test_silence_per_account_expires(sqlite_db: Database):
    db = sqlite_db
    issued = make_account(db, contacts=["ops@example.com"])
    clock = Clock()
    with db.session() as s:
        silences.add(s, reseller_id=issued.reseller.id, account_id=issued.account.id,
                     starts_at=clock.now, ends_at=clock.now + timedelta(minutes=10))
    mailer = MemoryMailer()
    notifier = make_notifier(db, clock=clock, mailer=mailer)
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    clock.advance(601)
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    assert len(mailer.sent) == 1


async def test_account_level_quota_inhibits_job_failures_not_outdated_client(db: Database):
    issued = make_account(db, contacts=["ops@example.com"])
    mailer = MemoryMailer()
    notifier = make_notifier(db, mailer=mailer)
    t = tenant_of(issued)
    await notifier.handle(alert(t, kind="quota", job=None, summary="quota over 90%"))
    await settle(notifier)
    await notifier.handle(alert(t, kind="failed_run", job="nightly"))
    await notifier.handle(alert(t, kind="outdated_client", job="nightly"))
    await settle(notifier)
    reasons = {t.alert["kind"]: t.suppressed_reason for t in _transitions(db)}
    assert reasons == {"quota": None, "failed_run": "inhibited", "outdated_client": None}
    assert len(mailer.sent) == 2


async def test_never_used_inhibits_missed_runs(sqlite_db: Database):
    issued = make_account(sqlite_db, contacts=["ops@example.com"])
    notifier = make_notifier(sqlite_db)
    t = tenant_of(issued)
    await notifier.handle(alert(t, kind="never_used", job=None))
    await settle(notifier)
    await notifier.handle(alert(t, kind="missed_run", job="daily"))
    await settle(notifier)
    assert _transitions(sqlite_db)[-1].suppressed_reason == "inhibited"


async def test_reminders_repeat_until_resolved_and_are_queryable(db: Database):
    issued = make_account(db, contacts=["ops@example.com"])
    with db.session() as s:
        admin.set_repeat(s, "Reseller", None, 3600)
        admin.set_repeat(s, "Reseller", "Customer", 600)  # the customer's setting wins
    clock = Clock()
    mailer = MemoryMailer()
    notifier = make_notifier(db, clock=clock, mailer=mailer, repeat=86400)
    fired = alert(tenant_of(issued))
    await notifier.handle(fired)
    await settle(notifier)
    for _ in range(3):
        clock.advance(300)
        await notifier.enqueue_reminders()
        await settle(notifier)
    assert len(mailer.sent) == 2  # the firing, and one reminder after 600 s
    clock.advance(300)
    await notifier.enqueue_reminders()
    await settle(notifier)
    subjects = [str(m["Subject"]) for m in mailer.sent]
    assert [s.split("]")[0] for s in subjects] == ["[PROBLEM", "[REMINDER", "[REMINDER"]
    state = _state(db, fired.fingerprint)
    assert state.notification_count == 3 and state.reminders_sent == 2
    assert state.last_notified_at == clock.now

    await notifier.handle(alert(tenant_of(issued), state="resolved", sequence=2,
                                fingerprint=fired.fingerprint))
    await settle(notifier)
    clock.advance(3600)
    await notifier.enqueue_reminders()
    await settle(notifier)
    assert [str(m["Subject"]).split("]")[0] for m in mailer.sent][-1] == "[RESOLVED"
    assert len(mailer.sent) == 4
    with db.session() as s:
        assert admin.alert_status(s, fired.fingerprint[:8]).items[0].state.notification_count == 4


async def test_two_replicas_send_one_reminder(sqlite_db: Database):
    db = sqlite_db
    issued = make_account(db, contacts=["ops@example.com"])
    clock = Clock()
    mailer = MemoryMailer()
    one = make_notifier(db, clock=clock, mailer=mailer, repeat=60)
    two = make_notifier(db, clock=clock, mailer=mailer, repeat=60)
    await one.handle(alert(tenant_of(issued)))
    await settle(one)
    clock.advance(61)
    await one.enqueue_reminders()
    await two.enqueue_reminders()
    await settle(one)
    await settle(two)
    assert len(mailer.sent) == 2


async def test_grouping_one_customer_alerts_into_one_mail(db: Database):
    first = make_account(db, contacts=["ops@example.com"])
    second = make_account(db, contacts=["ops@example.com"])
    clock = Clock()
    mailer = MemoryMailer()
    notifier = make_notifier(db, clock=clock, mailer=mailer, group_window=30)
    await notifier.handle(alert(tenant_of(first), job="a"))
    await settle(notifier)
    clock.advance(10)
    await notifier.handle(alert(tenant_of(second), job="b"))
    await settle(notifier)
    assert mailer.sent == []  # the window is still open
    clock.advance(21)
    await settle(notifier)
    assert len(mailer.sent) == 1
    body = mailer.sent[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "2 backup alerts" in str(mailer.sent[0]["Subject"]) and "job b" in body
