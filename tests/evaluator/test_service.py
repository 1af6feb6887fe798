"""The evaluator end to end: real nats-server, real databases, events in, alert events out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from services.evaluator.clock import FakeClock
from services.evaluator.service import Evaluator
from services.evaluator.tables import Alert, AlertTransition, JobState
from shared.bus import Bus
from shared.config import EvaluatorSettings
from shared.db import Database
from shared.events import AlertChanged, UsageReported, decode
from shared.streams import ALERTS
from tests.evaluator.support import StartEvaluator, run, schedule
from tests.support import eventually, make_account, tenant_of


async def alert_events(bus: Bus) -> list[AlertChanged]:
    info = await bus.js.stream_info(ALERTS.name)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        if info.state.messages == 0:
            break
        msg = await bus.js.get_msg(ALERTS.name, seq)
        event = decode(msg.data or b"")
        assert isinstance(event, AlertChanged)
        out.append(event)
    return out


def alerts(db: Database) -> list[Alert]:
    with db.session() as session:
        return list(session.exec(select(Alert)))


async def test_failed_run_fires_and_resolves_end_to_end(
    db: Database, bus: Bus, start_evaluator: StartEvaluator
) -> None:
    tenant = tenant_of(make_account(db))
    await start_evaluator(db, replica_id="one")
    now = datetime.now(UTC)
    await bus.publish(run("failure", now, tenant=tenant, message="disk full"))
    fired = await eventually(lambda: [a for a in alerts(db) if a.state == "firing"])
    assert fired[0].kind == "failed_run" and "disk full" in fired[0].summary
    await bus.publish(run("success", now + timedelta(seconds=1), tenant=tenant))
    await eventually(lambda: all(a.state == "resolved" for a in alerts(db)))
    events = await eventually(lambda: _n_events(bus, 2))
    assert [(e.state, e.sequence) for e in events] == [("firing", 1), ("resolved", 2)]
    with db.session() as session:
        by_sequence = select(AlertTransition).order_by(col(AlertTransition.sequence))
        history = session.exec(by_sequence).all()
        assert [h.state for h in history] == ["firing", "resolved"]


async def _n_events(bus: Bus, n: int) -> list[AlertChanged] | None:
    events = await alert_events(bus)
    return events if len(events) >= n else None


async def test_redelivered_event_does_not_double_count(
    sqlite_db: Database, bus: Bus, start_evaluator: StartEvaluator
) -> None:
    db = sqlite_db
    tenant = tenant_of(make_account(db))
    await start_evaluator(db, replica_id="one")
    failure = run("failure", datetime.now(UTC), tenant=tenant)
    with db.session() as session:
        from services.evaluator.store import set_override
        set_override(session, "account", tenant.account, "failures_tolerance", "2")
    await asyncio.sleep(1.0)  # the thresholds are re-read on the lease cadence
    # The same event stored twice (another message id), as a redelivery would hand it over.
    for msg_id in ("first", "second"):
        await bus.js.publish(failure.subject(), failure.encode(), headers={"Nats-Msg-Id": msg_id})
    await eventually(lambda: _job_failures(db) == 1)
    await asyncio.sleep(1.0)
    assert _job_failures(db) == 1
    assert alerts(db) == []


def _job_state(db: Database) -> JobState | None:
    with db.session() as session:
        return session.exec(select(JobState)).first()


def _job_failures(db: Database) -> int | None:
    state = _job_state(db)
    return state.consecutive_failures if state else None


async def test_missed_run_detected_from_the_schedule(
    db: Database, bus: Bus, start_evaluator: StartEvaluator
) -> None:
    tenant = tenant_of(make_account(db))
    await start_evaluator(db, replica_id="one")
    now = datetime.now(UTC)
    await bus.publish(schedule(now, tenant=tenant, interval_seconds=1, grace_seconds=1))
    fired = await eventually(lambda: [a for a in alerts(db) if a.state == "firing"])
    assert fired[0].kind == "missed_run"
    await bus.publish(run("success", datetime.now(UTC), tenant=tenant))
    await eventually(lambda: [a for a in alerts(db) if a.state == "resolved"])


async def test_two_replicas_produce_each_alert_exactly_once(
    db: Database, bus: Bus, start_evaluator: StartEvaluator
) -> None:
    tenants = [tenant_of(make_account(db)) for _ in range(12)]
    one = await start_evaluator(db, replica_id="one")
    two = await start_evaluator(db, replica_id="two")
    # Both replicas share the partitions between them.
    await eventually(lambda: len(set(one.workers) | set(two.workers)) == 16
                     and not set(one.workers) & set(two.workers)
                     and 6 <= len(one.workers) <= 10, timeout=20)
    now = datetime.now(UTC)
    for i, tenant in enumerate(tenants):
        await bus.publish(run("failure", now, tenant=tenant, job="files"))
        if i % 2:  # and a deadline each replica might think is its own
            await bus.publish(schedule(now, tenant=tenant, job="db", interval_seconds=1,
                                       grace_seconds=1))
    expected = len(tenants) + len(tenants) // 2
    try:
        events = await eventually(lambda: _n_events(bus, expected), timeout=45)
    except AssertionError:
        published = len(await alert_events(bus))
        raise AssertionError(f"{published} of {expected} alert events published; "
                             f"{len(alerts(db))} alerts in the database") from None
    await asyncio.sleep(2.0)  # would-be duplicates get the time to show up
    events = await alert_events(bus)
    assert len(events) == expected
    assert len({(e.fingerprint, e.sequence) for e in events}) == expected
    assert len(alerts(db)) == expected


async def test_restart_catches_up_on_deadlines_missed_while_down(
    sqlite_db: Database, bus: Bus
) -> None:
    db = sqlite_db
    tenant = tenant_of(make_account(db))
    start = datetime.now(UTC)
    clock = FakeClock(start)
    settings = EvaluatorSettings(evaluator_lease_seconds=3, evaluator_refresh_seconds=0.5)
    with db.session() as session:
        from services.evaluator.store import set_override
        set_override(session, "account", tenant.account, "missed_runs_tolerance", "3")

    async def run_for(seconds: float, evaluator: Evaluator) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(evaluator.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
        await task

    first = Evaluator(db, bus, settings, clock=clock, replica_id="first")
    await bus.publish(schedule(start, tenant=tenant, interval_seconds=3600, grace_seconds=60))
    await run_for(1.5, first)
    assert _next_due(db) == start + timedelta(hours=1)
    clock.advance(timedelta(hours=2, minutes=5))  # down over two occurrences
    second = Evaluator(db, bus, settings, clock=clock, replica_id="second")
    await run_for(1.5, second)
    assert _misses(db) == 2 and alerts(db) == []
    third = Evaluator(db, bus, settings, clock=clock, replica_id="third")
    await run_for(1.5, third)  # a restart without time passing counts nothing again
    assert _misses(db) == 2
    clock.advance(timedelta(hours=1))
    fourth = Evaluator(db, bus, settings, clock=clock, replica_id="fourth")
    await run_for(1.5, fourth)
    assert _misses(db) == 3
    [alert] = alerts(db)
    assert alert.kind == "missed_run" and alert.details["consecutive_misses"] == 3


def _next_due(db: Database) -> datetime | None:
    state = _job_state(db)
    return state.next_due_at if state else None


def _misses(db: Database) -> int | None:
    state = _job_state(db)
    return state.consecutive_misses if state else None


async def test_quota_with_terabytes_fires_and_resolves(
    db: Database, bus: Bus, start_evaluator: StartEvaluator
) -> None:
    tenant = tenant_of(make_account(db, quota_bytes=4 * 10**12))
    await start_evaluator(db, replica_id="one")
    now = datetime.now(UTC)
    await bus.publish(UsageReported(tenant=tenant, occurred_at=now, bytes_used=38 * 10**11))
    fired = await eventually(lambda: [a for a in alerts(db) if a.state == "firing"])
    assert fired[0].kind == "quota" and fired[0].details["percent"] == 95.0
    await bus.publish(UsageReported(tenant=tenant, occurred_at=now, bytes_used=10**12,
                                    quota_bytes=5 * 10**12))
    await eventually(lambda: [a for a in alerts(db) if a.state == "resolved"])


async def test_ready_once_its_partitions_are_loaded(
    sqlite_db: Database, bus: Bus, start_evaluator: StartEvaluator
) -> None:
    make_account(sqlite_db)
    evaluator = await start_evaluator(sqlite_db, replica_id="one")
    assert not evaluator.ready()  # nothing held yet: /readyz must not say otherwise
    await eventually(evaluator.ready, timeout=20)
    assert len(evaluator.workers) == 16
    assert all(worker.loaded.is_set() for worker, _ in evaluator.workers.values())
