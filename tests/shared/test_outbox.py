"""The transactional outbox publishes what was committed, once, and only what was committed."""

import asyncio
from functools import partial

import pytest
from sqlmodel import Session, select

from shared.bus import Bus
from shared.db import Database
from shared.events import RunReported, Tenant, decode
from shared.outbox import OutboxRelay, OutboxRow, _delete, enqueue
from shared.streams import INGEST
from tests.support import eventually

TENANT = Tenant(reseller="r", customer="c", account="a")


def enqueue_runs(db: Database, count: int) -> None:
    with db.session() as session:
        for i in range(count):
            enqueue(session, RunReported(event_id=f"o{i}", tenant=TENANT, job="j",
                                         status="success"))


async def test_relay_publishes_committed_rows_and_empties_the_outbox(
    bus: Bus, sqlite_db: Database
) -> None:
    enqueue_runs(sqlite_db, 3)
    relay = OutboxRelay(sqlite_db, bus)
    assert await relay.flush() == 3
    assert await relay.flush() == 0
    assert (await bus.js.stream_info(INGEST.name)).state.messages == 3
    with sqlite_db.session() as session:
        assert session.exec(select(OutboxRow)).all() == []


async def test_rolled_back_transaction_publishes_nothing(bus: Bus, sqlite_db: Database) -> None:
    try:
        with sqlite_db.session() as session:
            enqueue(session, RunReported(tenant=TENANT, job="j", status="success"))
            raise RuntimeError("rule failed")
    except RuntimeError:
        pass
    assert await OutboxRelay(sqlite_db, bus).flush() == 0


async def test_republishing_after_a_crash_is_deduplicated(bus: Bus, sqlite_db: Database) -> None:
    event = RunReported(event_id="crash", tenant=TENANT, job="j", status="success")
    await bus.publish(event)  # published, then the process died before deleting the row
    with sqlite_db.session() as session:
        enqueue(session, event)
    await OutboxRelay(sqlite_db, bus).flush()
    assert (await bus.js.stream_info(INGEST.name)).state.messages == 1


async def test_two_relays_on_the_same_rows_publish_each_event_once(
    bus: Bus, sqlite_db: Database
) -> None:
    enqueue_runs(sqlite_db, 20)
    first, second = OutboxRelay(sqlite_db, bus), OutboxRelay(sqlite_db, bus)
    await asyncio.gather(first.flush(), second.flush())
    assert (await bus.js.stream_info(INGEST.name)).state.messages == 20
    with sqlite_db.session() as session:
        assert session.exec(select(OutboxRow)).all() == []


async def test_relay_keeps_running_when_the_database_fails(
    bus: Bus, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = OutboxRelay(sqlite_db, bus)
    failures = iter([RuntimeError("database is locked")])
    real_pending = relay._pending

    def flaky_pending(session: Session) -> list[OutboxRow]:
        error = next(failures, None)
        if error is not None:
            raise error
        return real_pending(session)

    monkeypatch.setattr(relay, "_pending", flaky_pending)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, interval=0.1))
    enqueue_runs(sqlite_db, 2)
    relay.poke()
    await eventually(lambda: _stored(bus, 2), timeout=10)
    stop.set()
    await task


async def _stored(bus: Bus, n: int) -> bool:
    return (await bus.js.stream_info(INGEST.name)).state.messages == n


async def test_a_relay_deletes_only_what_it_published_even_when_seqs_are_reused(
    bus: Bus, sqlite_db: Database
) -> None:
    """Two relays: the other one publishes and empties the outbox while this one publishes the
    same row; a new row then gets the freed seq (SQLite reuses it). It must survive."""
    first, other = OutboxRelay(sqlite_db, bus), OutboxRelay(sqlite_db, bus)
    enqueue_runs(sqlite_db, 1)
    with sqlite_db.session() as session:
        seen = first._pending(session)
    assert await other.flush() == 1  # published and deleted by the other relay
    with sqlite_db.session() as session:
        enqueue(session, RunReported(event_id="new", tenant=TENANT, job="j", status="success"))
    with sqlite_db.session() as session:
        [new] = session.exec(select(OutboxRow)).all()
    assert new.seq == seen[0].seq  # the seq was handed out again: the case that matters
    await bus.publish(decode(seen[0].payload))
    await sqlite_db.run(partial(_delete, event_ids=[row.event_id for row in seen]))
    assert await first.flush() == 1  # the new row is still there, and goes out
    assert await stream_has(bus, "new")


async def stream_has(bus: Bus, event_id: str) -> bool:
    info = await bus.js.stream_info(INGEST.name)
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        if decode((await bus.js.get_msg(INGEST.name, seq)).data or b"").event_id == event_id:
            return True
    return False
