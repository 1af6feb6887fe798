"""Delivery: planning once per transition and receiver, retries, dead letters, replay, leases.
On both database backends, against a real HTTP receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from sqlmodel import col, select
from standardwebhooks import Webhook

from services.notifier import admin
from services.notifier.queue import delivery
from services.notifier.service import Notifier
from services.notifier.tables import DeliveryAttempt, Notification, NotifyTransition
from shared.clock import FakeClock
from shared.db import Database
from tests.notifier.receiver import Receiver
from tests.notifier.support import KEYS, LOCAL, MemoryMailer, alert, make_notifier, schedule, settle
from tests.support import eventually, make_account, tenant_of


def _hook(db: Database, receiver: Receiver, fmt: str = "backstop", **kw: str) -> str:
    with db.session() as s:
        new = admin.add_webhook(s, reseller="Reseller", customer=None, url=receiver.url, fmt=fmt,
                                keys=KEYS, targets=LOCAL, **kw)
        return new.generated_secret or ""


def _rows(db: Database) -> list[Notification]:
    with db.session() as s:
        return list(s.exec(select(Notification).order_by(col(Notification.id))).all())


def _attempts(db: Database) -> list[DeliveryAttempt]:
    with db.session() as s:
        return list(s.exec(select(DeliveryAttempt).order_by(col(DeliveryAttempt.id))).all())


async def test_email_and_signed_webhook_once_each(db: Database, webhook_receiver: Receiver):
    issued = make_account(db, contacts=["ops@example.com"])
    with db.session() as s:
        admin.set_contacts(s, "Reseller", None, ["noc@msp.example"])
    secret = _hook(db, webhook_receiver)
    mailer = MemoryMailer()
    notifier = make_notifier(db, mailer=mailer)
    event = alert(tenant_of(issued))

    await notifier.handle(event)
    await notifier.handle(event)  # redelivered
    await settle(notifier)
    await notifier.handle(event)  # redelivered after delivery
    await settle(notifier)

    assert sorted(str(m["To"]) for m in mailer.sent) == ["noc@msp.example", "ops@example.com"]
    assert len(webhook_receiver.requests) == 1
    request = webhook_receiver.requests[0]
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["data"]["action"] == "trigger"
    assert {r.status for r in _rows(db)} == {"sent"}
    attempts = _attempts(db)
    assert len(attempts) == 3 and {a.status for a in attempts} == {"sent"}
    assert {a.channel for a in attempts} == {"email", "webhook"}


async def test_two_replicas_deliver_each_notification_once(db: Database,
                                                           webhook_receiver: Receiver):
    issued = make_account(db, contacts=["a@example.com"])
    _hook(db, webhook_receiver)
    webhook_receiver.delay = 0.05
    one, two = make_notifier(db), make_notifier(db)
    events = [alert(tenant_of(issued)) for _ in range(10)]
    await asyncio.gather(*(n.handle(e) for e in events for n in (one, two)))
    await asyncio.gather(settle(one), settle(two), settle(one), settle(two))
    await asyncio.gather(settle(one), settle(two))

    assert len(webhook_receiver.requests) == 10
    ids = {r.headers["webhook-id"] for r in webhook_receiver.requests}
    assert len(ids) == 10
    mails = len(one.dispatcher._mailer.sent) + len(two.dispatcher._mailer.sent)  # type: ignore[attr-defined]
    assert mails == 10


async def test_5xx_and_429_are_retried_honouring_retry_after(db: Database,
                                                             webhook_receiver: Receiver):
    issued = make_account(db, contacts=[])
    _hook(db, webhook_receiver)
    clock = FakeClock()
    notifier = make_notifier(db, clock=clock, schedule=schedule(base=1, jitter=0))
    webhook_receiver.replies = [(503, {}), (429, {"Retry-After": "120"})]
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    assert _rows(db)[0].status == "pending"
    clock.advance(1)  # first back-off: 1 s
    await settle(notifier)
    row = _rows(db)[0]
    assert row.status == "pending" and row.attempts == 2
    assert row.next_attempt_at - clock.now() >= timedelta(seconds=119)  # Retry-After wins
    clock.advance(60)
    await settle(notifier)
    assert len(webhook_receiver.requests) == 2  # not before Retry-After
    clock.advance(61)
    await settle(notifier)
    assert _rows(db)[0].status == "sent"
    assert [a.http_status for a in _attempts(db)] == [503, 429, 202]
    assert [a.status for a in _attempts(db)] == ["retry", "retry", "sent"]


async def test_a_resolve_waits_for_its_trigger_at_the_same_receiver(
    db: Database, webhook_receiver: Receiver
):
    # A ticket system given the resolve first ignores it, then opens a ticket nothing closes.
    issued = make_account(db, contacts=[])
    _hook(db, webhook_receiver)
    clock = FakeClock()
    notifier = make_notifier(db, clock=clock, schedule=schedule(base=10, jitter=0))
    webhook_receiver.replies = [(503, {})]
    fired = alert(tenant_of(issued))
    await notifier.handle(fired)
    await settle(notifier)
    await notifier.handle(alert(tenant_of(issued), state="resolved", sequence=2,
                                fingerprint=fired.fingerprint))
    await settle(notifier)
    assert [b["data"]["action"] for b in webhook_receiver.bodies()] == ["trigger"]
    clock.advance(10)
    await settle(notifier)
    await settle(notifier)
    assert [b["data"]["action"] for b in webhook_receiver.bodies()] == [
        "trigger", "trigger", "resolve"]
    assert {r.status for r in _rows(db)} == {"sent"}


async def test_other_4xx_is_not_retried(db: Database, webhook_receiver: Receiver):
    issued = make_account(db, contacts=[])
    _hook(db, webhook_receiver)
    clock = FakeClock()
    notifier = make_notifier(db, clock=clock)
    webhook_receiver.replies = [(400, {})]
    await notifier.handle(alert(tenant_of(issued)))
    await settle(notifier)
    clock.advance(3600)
    await settle(notifier)
    assert len(webhook_receiver.requests) == 1
    row = _rows(db)[0]
    assert row.status == "dead" and "HTTP 400" in (row.last_error or "")


async def test_dead_letter_after_deadline_then_replay(db: Database, webhook_receiver: Receiver):
    issued = make_account(db, contacts=[])
    _hook(db, webhook_receiver)
    clock = FakeClock()
    notifier = make_notifier(db, clock=clock, schedule=schedule(base=600, cap=3600))
    webhook_receiver.replies = [(500, {})] * 100
    await notifier.handle(alert(tenant_of(issued)))
    for _ in range(200):
        await settle(notifier)
        if _rows(db)[0].status == "dead":
            break
        clock.advance(3600 * 1.25)
    row = _rows(db)[0]
    assert row.status == "dead"
    assert row.dead_at is not None and row.dead_at - row.created_at >= timedelta(hours=24)
    assert 10 < row.attempts < 60
    with db.session() as s:
        assert delivery.depth(s) == {"pending": 0, "dead": 1}

    webhook_receiver.replies = []
    with db.session() as s:
        assert delivery.replay(s, clock.now()) == 1
    await settle(notifier)
    assert _rows(db)[0].status == "sent"
    # the same webhook-id on every attempt, replay included: receivers can dedupe
    assert len({r.headers["webhook-id"] for r in webhook_receiver.requests}) == 1


async def test_killed_mid_delivery_resumes_after_the_lease(db: Database,
                                                           webhook_receiver: Receiver):
    issued = make_account(db, contacts=[])
    _hook(db, webhook_receiver)
    clock = FakeClock()
    notifier = make_notifier(db, clock=clock, lease=30, concurrency=0)  # plans, never sends
    await notifier.handle(alert(tenant_of(issued)))
    await notifier.drain()
    # The "killed" replica leased the row and died before recording anything.
    with db.session() as s:
        assert len(delivery.claim(s, clock.now(), 30, 10)) == 1
    restarted = make_notifier(db, clock=clock, lease=30)
    await settle(restarted)
    assert webhook_receiver.requests == []  # still leased by the dead one
    clock.advance(31)
    await settle(restarted)
    assert len(webhook_receiver.requests) == 1
    assert _rows(db)[0].status == "sent"


async def test_accepted_but_unplanned_transitions_survive_a_restart(db: Database):
    issued = make_account(db, contacts=["ops@example.com"])
    first = make_notifier(db, inline=False)
    await first.handle(alert(tenant_of(issued)))  # acked, then the process dies
    mailer = MemoryMailer()
    await settle(make_notifier(db, mailer=mailer))
    assert len(mailer.sent) == 1
    with db.session() as s:
        assert s.exec(select(NotifyTransition)).one().planned_at is not None


class Hang:
    """A mailer that never finishes: the replica "crashes" with these deliveries in flight."""

    def __init__(self) -> None:
        self.started = 0

    async def send(self, message: object) -> None:
        self.started += 1
        await asyncio.Event().wait()


async def _crash_with_two_in_flight(db: Database, clock: FakeClock, replica: str) -> None:
    """Replica ``replica`` leases two deliveries — one its planner handed to its dispatcher, one
    its dispatcher claimed — and dies before recording either."""
    issued = make_account(db, contacts=["ops@example.com"])
    mailer = Hang()
    crashed = make_notifier(db, clock=clock, mailer=mailer, lease=120, replica=replica,
                            concurrency=1)
    await crashed.handle(alert(tenant_of(issued)))  # planned inline, handed over, hangs
    await eventually(lambda: mailer.started == 1)
    crashed.options.inline = False
    await crashed.handle(alert(tenant_of(issued)))
    await crashed.plan_due()  # no free slot: planned, not handed over
    with db.session() as s:
        assert len(delivery.claim(s, clock.now(), 120, 10, crashed.dispatcher.replica.owner())
                   ) == 1
    assert all(r.lease_owner and r.status == "pending" for r in _rows(db)) and len(_rows(db)) == 2


async def _run_for(notifier: Notifier, seconds: float, until: Callable[[], bool]) -> bool:
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.dispatcher.run(stop, interval=0.1))
    try:
        await eventually(until, timeout=seconds)
        return True
    except AssertionError:
        return False
    finally:
        stop.set()
        await task


async def test_a_restarted_replica_reclaims_its_own_deliveries_at_once(db: Database) -> None:
    clock = FakeClock()
    before = {t for t in asyncio.all_tasks()}
    await _crash_with_two_in_flight(db, clock, "notifier-0")
    mailer = MemoryMailer()
    restarted = make_notifier(db, clock=clock, mailer=mailer, lease=120, replica="notifier-0")
    started = asyncio.get_running_loop().time()
    assert await _run_for(restarted, 3.0, lambda: len(mailer.sent) == 2)
    assert asyncio.get_running_loop().time() - started < 3.0  # not after the 120 s lease
    assert [r.status for r in _rows(db)] == ["sent", "sent"]
    for task in asyncio.all_tasks() - before - {asyncio.current_task()}:
        task.cancel()  # the crashed replica's hung sends


async def test_another_replica_still_waits_for_the_lease(db: Database) -> None:
    clock = FakeClock()
    before = {t for t in asyncio.all_tasks()}
    await _crash_with_two_in_flight(db, clock, "notifier-0")
    mailer = MemoryMailer()
    other = make_notifier(db, clock=clock, mailer=mailer, lease=120, replica="notifier-1")
    assert not await _run_for(other, 1.5, lambda: len(mailer.sent) > 0)
    clock.advance(121)
    assert await _run_for(other, 3.0, lambda: len(mailer.sent) == 2)
    for task in asyncio.all_tasks() - before - {asyncio.current_task()}:
        task.cancel()
