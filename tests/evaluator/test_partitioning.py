"""Partitioning by account in the stream, and the ordered batch consumer the evaluator uses."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from shared.backoff import Backoff
from shared.bus import Bus, PermanentFailure
from shared.consumers import consume_ordered
from shared.events import Event, RunReported, Tenant
from shared.streams import (
    DEAD_LETTERS,
    INGEST,
    ConsumerSpec,
    ingest_partition_filter,
    partition_of,
)
from tests.support import eventually


def _run(account: str, job: str) -> RunReported:
    tenant = Tenant(reseller="r", customer="c", account=account)
    return RunReported(tenant=tenant, job=job, status="success", occurred_at=datetime.now(UTC))


async def test_stream_appends_the_partition_that_partition_of_computes(bus: Bus) -> None:
    accounts = [uuid.uuid4().hex[:16] for _ in range(40)]
    for account in accounts:
        await bus.publish(_run(account, "j"))
    for seq, account in enumerate(accounts, start=1):
        msg = await bus.js.get_msg(INGEST.name, seq)
        assert msg.subject == f"backstop.ingest.run.v1.r.c.{account}.{partition_of(account)}"
    assert len({partition_of(a) for a in accounts}) > 8  # spread, not all in one


async def _consume(bus: Bus, spec: ConsumerSpec, handle, until) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    task = asyncio.create_task(consume_ordered(bus, spec, handle, stop))
    try:
        for _ in range(200):
            if until():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("consumer did not finish")
    finally:
        stop.set()
        await task  # a consumer that crashed must fail the test, even if it got far enough


async def test_ordered_consumer_keeps_order_through_a_failure(bus: Bus) -> None:
    account = "acct0001"
    partition = partition_of(account)
    for i in range(10):
        await bus.publish(_run(account, f"job{i}"))
    spec = ConsumerSpec(stream=INGEST.name, durable="ordered-test",
                        filter_subjects=[ingest_partition_filter(partition)], batch=4,
                        backoff=Backoff.of(0.05))
    applied: list[str] = []
    failed_once: set[str] = set()

    async def handle(events: list[Event]) -> None:
        staged = []
        for event in events:
            assert isinstance(event, RunReported)
            if event.job == "job5" and "job5" not in failed_once:
                failed_once.add("job5")
                raise RuntimeError("database hiccup")
            staged.append(event.job)
        applied.extend(staged)  # all or nothing, as a transaction

    await _consume(bus, spec, handle, lambda: len(applied) >= 10)
    assert applied == [f"job{i}" for i in range(10)]


async def test_ordered_consumer_dead_letters_a_poison_message_and_goes_on(bus: Bus) -> None:
    account = "acct0002"
    for i in range(3):
        await bus.publish(_run(account, f"job{i}"))
    spec = ConsumerSpec(stream=INGEST.name, durable="poison-test",
                        filter_subjects=[ingest_partition_filter(partition_of(account))],
                        batch=8, backoff=Backoff.of(0.01))
    applied: list[str] = []

    async def handle(events: list[Event]) -> None:
        if any(isinstance(e, RunReported) and e.job == "job1" for e in events):
            raise PermanentFailure("cannot apply")
        applied.extend(e.job for e in events if isinstance(e, RunReported))

    await _consume(bus, spec, handle, lambda: len(applied) >= 2)
    assert applied == ["job0", "job2"]
    info = await bus.js.stream_info(DEAD_LETTERS.name)
    assert info.state.messages == 1


def _validation_error() -> Exception:
    class Positive(BaseModel):
        n: int

    try:
        Positive.model_validate({"n": "many"})
    except ValueError as exc:
        return exc
    raise AssertionError("validated")


PERMANENT = {
    "overflow": lambda: OverflowError("date value out of range"),
    "validation": _validation_error,
    "naive vs aware": lambda: TypeError("can't compare offset-naive and offset-aware datetimes"),
}


@pytest.mark.parametrize("error", list(PERMANENT))
async def test_a_permanent_failure_holds_up_nothing_behind_it(bus: Bus, error: str) -> None:
    """Dead-lettered at once with its reason, however long the back-off of a transient one."""
    account = f"acct-perm-{error}".replace(" ", "-")
    for i in range(4):
        await bus.publish(_run(account, f"job{i}"))
    spec = ConsumerSpec(stream=INGEST.name, durable=f"permanent-{account}", ack_policy="all",
                        filter_subjects=[ingest_partition_filter(partition_of(account))],
                        batch=8, backoff=Backoff.of(30))
    applied: list[str] = []
    loop = asyncio.get_running_loop()
    started, finished = loop.time(), 0.0

    async def handle(events: list[Event]) -> None:
        nonlocal finished
        if any(isinstance(e, RunReported) and e.job == "job1" for e in events):
            raise PERMANENT[error]()
        applied.extend(e.job for e in events if isinstance(e, RunReported))
        finished = loop.time()

    await _consume(bus, spec, handle, lambda: len(applied) >= 3)
    assert finished - started < 1.0
    assert applied == ["job0", "job2", "job3"]
    msg = await bus.js.get_last_msg(DEAD_LETTERS.name, f"backstop.dlq.{spec.durable}")
    assert msg.headers is not None
    reason = msg.headers["Backstop-Dead-Letter-Reason"]
    assert reason.startswith(f"permanent failure: {type(PERMANENT[error]()).__name__}: ")
    info = await bus.js.consumer_info(spec.stream, spec.durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_poison_message_the_dead_letters_cannot_take_stays_in_place(bus: Bus) -> None:
    """Never acked past, never lost: it waits, and the messages behind it, until the dead-letter
    stream is back."""
    account = "acct-no-dlq"
    for i in range(3):
        await bus.publish(_run(account, f"job{i}"))
    await bus.js.delete_stream(DEAD_LETTERS.name)
    spec = ConsumerSpec(stream=INGEST.name, durable="no-dlq-test", ack_policy="all",
                        filter_subjects=[ingest_partition_filter(partition_of(account))],
                        batch=8, backoff=Backoff.of(0.1), max_deliver=2)
    applied: list[str] = []

    async def handle(events: list[Event]) -> None:
        if any(isinstance(e, RunReported) and e.job == "job1" for e in events):
            raise OverflowError("date value out of range")
        applied.extend(e.job for e in events if isinstance(e, RunReported))

    stop = asyncio.Event()
    task = asyncio.create_task(consume_ordered(bus, spec, handle, stop))
    await asyncio.sleep(2.0)
    assert applied == ["job0"]  # job2 waits behind job1
    await bus.ensure_streams([DEAD_LETTERS])
    await eventually(lambda: len(applied) >= 2)
    stop.set()
    await task
    assert applied == ["job0", "job2"]
    assert (await bus.js.stream_info(DEAD_LETTERS.name)).state.messages == 1
    info = await bus.js.consumer_info(spec.stream, spec.durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_transient_failure_is_waited_out_in_place(bus: Bus) -> None:
    """The database away: retrying is right, and nothing may overtake the message."""
    account = "acct-transient"
    for i in range(3):
        await bus.publish(_run(account, f"job{i}"))
    spec = ConsumerSpec(stream=INGEST.name, durable="transient-test", ack_policy="all",
                        filter_subjects=[ingest_partition_filter(partition_of(account))],
                        batch=8, backoff=Backoff.of(0.2))
    away = create_engine("sqlite:////nonexistent/dir/backstop.db")
    applied: list[str] = []
    attempts: list[str] = []

    async def handle(events: list[Event]) -> None:
        jobs = [e.job for e in events if isinstance(e, RunReported)]
        attempts.append(",".join(jobs))
        if "job1" in jobs and attempts.count("job1") < 2:
            with away.connect() as conn:  # a real OperationalError: unable to open the file
                conn.execute(text("select 1"))
        applied.extend(jobs)

    await _consume(bus, spec, handle, lambda: len(applied) >= 3)
    assert applied == ["job0", "job1", "job2"]
    assert attempts == ["job0,job1,job2", "job0", "job1", "job1", "job2"]
    assert (await bus.js.stream_info(DEAD_LETTERS.name)).state.messages == 0
    with pytest.raises(OperationalError):
        away.connect()


async def test_messages_waiting_behind_a_retry_longer_than_the_ack_wait_stay_ours(
    bus: Bus
) -> None:
    """Not delivered again meanwhile: each delivery would count towards max_deliver, and a
    message that never failed would end up in the dead letters."""
    account = "acct-held"
    for i in range(3):
        await bus.publish(_run(account, f"job{i}"))
    spec = ConsumerSpec(stream=INGEST.name, durable="held-test", ack_policy="all",
                        filter_subjects=[ingest_partition_filter(partition_of(account))],
                        batch=8, backoff=Backoff.of(3.0), ack_wait_seconds=1, max_deliver=2)
    applied: list[str] = []
    failed: list[int] = []

    async def handle(events: list[Event]) -> None:
        jobs = [e.job for e in events if isinstance(e, RunReported)]
        if "job1" in jobs and len(failed) < 2:
            failed.append(1)
            raise RuntimeError("database restarting")
        applied.extend(jobs)

    await _consume(bus, spec, handle, lambda: len(applied) >= 3)
    await asyncio.sleep(1.5)  # a redelivery would have come by now
    stop = asyncio.Event()
    task = asyncio.create_task(consume_ordered(bus, spec, handle, stop))
    await asyncio.sleep(1.5)
    stop.set()
    await task
    assert applied == ["job0", "job1", "job2"]
    info = await bus.js.consumer_info(spec.stream, spec.durable)
    assert info.num_redelivered == 0 and info.num_ack_pending == 0
    assert (await bus.js.stream_info(DEAD_LETTERS.name)).state.messages == 0


def _handover_spec(durable: str, account: str, ack_wait: float) -> ConsumerSpec:
    return ConsumerSpec(stream=INGEST.name, durable=durable, ack_policy="all", batch=4,
                        filter_subjects=[ingest_partition_filter(partition_of(account))],
                        backoff=Backoff.of(0.05), ack_wait_seconds=ack_wait)


async def _record_all(bus: Bus, spec: ConsumerSpec, expected: int) -> list[str]:
    applied: list[str] = []

    async def record(events: list[Event]) -> None:
        applied.extend(e.job for e in events if isinstance(e, RunReported))

    await _consume(bus, spec, record, lambda: len(applied) >= expected)
    return applied


async def test_an_owner_stopping_finishes_its_batch_and_the_next_starts_at_once(
    bus: Bus
) -> None:
    """A partition moving to another replica: the batch in hand is finished and acked, so the
    next owner has nothing to wait for."""
    account = "acct0005"
    spec = _handover_spec("graceful-test", account, ack_wait=60)
    for i in range(6):
        await bus.publish(_run(account, f"job{i}"))
    stop_first = asyncio.Event()
    first: list[str] = []

    async def stopping(events: list[Event]) -> None:
        stop_first.set()  # told to stop while this batch is in hand
        first.extend(e.job for e in events if isinstance(e, RunReported))

    await asyncio.wait_for(consume_ordered(bus, spec, stopping, stop_first), timeout=10)
    for i in range(6, 10):
        await bus.publish(_run(account, f"job{i}"))
    started = asyncio.get_running_loop().time()
    rest = await _record_all(bus, spec, 10 - len(first))
    assert first + rest == [f"job{i}" for i in range(10)]
    assert asyncio.get_running_loop().time() - started < 30  # not a 60 s ack wait


async def test_an_owner_losing_its_lease_mid_batch_hands_the_batch_on_in_order(
    bus: Bus
) -> None:
    """The batch could not commit (the lease is gone): it must not be covered by the next
    owner's ack "all" of later messages."""
    account = "acct0003"
    spec = _handover_spec("handover-test", account, ack_wait=2)
    for i in range(6):
        await bus.publish(_run(account, f"job{i}"))
    stop_first = asyncio.Event()

    async def losing_lease(events: list[Event]) -> None:
        stop_first.set()
        raise RuntimeError("partition is no longer ours")

    await asyncio.wait_for(consume_ordered(bus, spec, losing_lease, stop_first), timeout=10)
    for i in range(6, 10):
        await bus.publish(_run(account, f"job{i}"))
    assert await _record_all(bus, spec, 10) == [f"job{i}" for i in range(10)]


async def test_a_crashed_owners_unacked_messages_are_not_skipped(bus: Bus) -> None:
    """Delivered to an owner that died without a word: the next owner must not ack past them
    (ack "all" would) before they come back."""
    account = "acct0004"
    spec = _handover_spec("crash-test", account, ack_wait=2)
    for i in range(3):
        await bus.publish(_run(account, f"job{i}"))
    dead = await bus.subscribe(spec)
    assert len(await dead.fetch(3, timeout=5)) == 3  # delivered, never acked
    await dead.unsubscribe()
    for i in range(3, 6):
        await bus.publish(_run(account, f"job{i}"))
    assert await _record_all(bus, spec, 6) == [f"job{i}" for i in range(6)]


async def test_a_consumer_that_may_not_fetch_takes_nothing(bus: Bus) -> None:
    """A replica unsure of its lease stops before taking messages it could not apply."""
    account = "acct0006"
    spec = _handover_spec("stale-lease-test", account, ack_wait=60)
    for i in range(3):
        await bus.publish(_run(account, f"job{i}"))
    handled: list[Event] = []

    async def handle(events: list[Event]) -> None:
        handled.extend(events)

    await asyncio.wait_for(
        consume_ordered(bus, spec, handle, asyncio.Event(), may_fetch=lambda: False), timeout=10)
    info = await bus.js.consumer_info(spec.stream, spec.durable)
    assert handled == [] and info.num_ack_pending == 0 and info.num_pending == 3
