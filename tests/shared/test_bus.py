"""The bus against a real nats-server: dedup, ack after work, retry, dead letters."""

import asyncio

from prometheus_client import REGISTRY

from shared.backoff import Backoff
from shared.bus import Bus, BusUnavailable, PermanentFailure
from shared.consumers import consume
from shared.events import Event, RunReported, Tenant
from shared.natsd import EmbeddedNats
from shared.streams import ALL_STREAMS, DEAD_LETTERS, INGEST, ConsumerSpec
from tests.support import eventually

TENANT = Tenant(reseller="r", customer="c", account="a")


def spec(name: str = "test", max_deliver: int = 3) -> ConsumerSpec:
    return ConsumerSpec(
        stream=INGEST.name, durable=name, filter_subjects=[RunReported.subject_filter()],
        max_deliver=max_deliver, backoff=Backoff.of(0.05), ack_wait_seconds=5,
    )


def run_event(event_id: str = "e1") -> RunReported:
    return RunReported(event_id=event_id, tenant=TENANT, job="j", status="failure")


async def stream_count(bus: Bus, stream: str) -> int:
    return int((await bus.js.stream_info(stream)).state.messages)


async def consume_until(bus: Bus, consumer: ConsumerSpec, handle, done) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    task = asyncio.create_task(consume(bus, consumer, handle, stop))
    try:
        await eventually(done)
    finally:
        stop.set()
        await task


def dead_letters(consumer: str) -> float:
    return REGISTRY.get_sample_value("backstop_bus_dead_letters_total", {"consumer": consumer}) or 0


async def test_publish_with_same_event_id_is_stored_once(bus: Bus) -> None:
    assert await bus.publish(run_event("same")) is False
    assert await bus.publish(run_event("same")) is True
    assert await stream_count(bus, INGEST.name) == 1


async def test_concurrent_publishes_each_get_their_own_acknowledgement(bus: Bus) -> None:
    # Acks come back through one shared reply subscription: each must reach its own caller.
    ids = [f"e{i % 100}" for i in range(300)]
    duplicates = await asyncio.gather(*(bus.publish(run_event(i)) for i in ids))
    assert sum(not d for d in duplicates) == 100
    assert await stream_count(bus, INGEST.name) == 100
    assert bus.acks.pending == 0


async def test_publish_without_a_stream_is_unavailable_at_once(nats_url: str) -> None:
    bus = Bus(nats_url)
    await bus.connect(ensure_topology=False)
    try:
        await bus.js.delete_stream(INGEST.name)
        started = asyncio.get_running_loop().time()
        try:
            await bus.publish(run_event(), timeout=5)
        except BusUnavailable as exc:
            assert "NoStreamResponse" in str(exc)
        else:
            raise AssertionError("publish succeeded with no stream")
        # No responders is answered by the server: no waiting out the timeout.
        assert asyncio.get_running_loop().time() - started < 1
        assert bus.acks.pending == 0
    finally:
        await bus.ensure_streams(ALL_STREAMS)
        await bus.close()


async def test_consumer_gets_each_event_and_acks(bus: Bus) -> None:
    for i in range(5):
        await bus.publish(run_event(f"e{i}"))
    seen: list[str] = []

    async def handle(event: Event) -> None:
        seen.append(event.event_id)

    await consume_until(bus, spec(), handle, lambda: len(seen) == 5)
    assert seen == [f"e{i}" for i in range(5)]
    info = await bus.js.consumer_info(INGEST.name, "test")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_failing_handler_is_retried_then_succeeds(bus: Bus) -> None:
    await bus.publish(run_event())
    attempts: list[int] = []

    async def flaky(event: Event) -> None:
        attempts.append(1)
        if len(attempts) < 2:
            raise RuntimeError("database briefly away")

    await consume_until(bus, spec(), flaky, lambda: len(attempts) == 2)
    assert await stream_count(bus, DEAD_LETTERS.name) == 0


async def test_message_that_keeps_failing_is_dead_lettered_with_reason(bus: Bus) -> None:
    await bus.publish(run_event())
    before = dead_letters("poison")

    async def always_fails(event: Event) -> None:
        raise RuntimeError("boom")

    async def dead_lettered() -> bool:
        return await stream_count(bus, DEAD_LETTERS.name) == 1

    await consume_until(bus, spec("poison", max_deliver=3), always_fails, dead_lettered)
    msg = await bus.js.get_last_msg(DEAD_LETTERS.name, "backstop.dlq.poison")
    assert msg.headers is not None
    assert "failed 3 times" in msg.headers["Backstop-Dead-Letter-Reason"]
    assert "boom" in msg.headers["Backstop-Dead-Letter-Reason"]
    assert msg.headers["Backstop-Original-Subject"] == run_event().subject()
    assert dead_letters("poison") == before + 1
    info = await bus.js.consumer_info(INGEST.name, "poison")
    assert info.num_ack_pending == 0  # acked after dead-lettering: it does not loop


async def test_permanent_failure_goes_straight_to_dead_letters(bus: Bus) -> None:
    await bus.publish(run_event())
    calls: list[int] = []

    async def refuses(event: Event) -> None:
        calls.append(1)
        raise PermanentFailure("account deleted")

    async def dead_lettered() -> bool:
        return await stream_count(bus, DEAD_LETTERS.name) == 1

    await consume_until(bus, spec("perm"), refuses, dead_lettered)
    assert calls == [1]


async def test_undecodable_message_is_dead_lettered(bus: Bus) -> None:
    await bus.js.publish(RunReported.subject_for(TENANT), b"{garbage")

    async def handle(event: Event) -> None:
        raise AssertionError("must not be called")

    async def dead_lettered() -> bool:
        return await stream_count(bus, DEAD_LETTERS.name) == 1

    await consume_until(bus, spec("garbage"), handle, dead_lettered)
    msg = await bus.js.get_last_msg(DEAD_LETTERS.name, "backstop.dlq.garbage")
    assert msg.headers is not None
    assert msg.headers["Backstop-Dead-Letter-Reason"].startswith("undecodable")


async def test_publishing_resumes_after_nats_restarts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Acks come back on one subscription: it must be renewed on the new connection, or every
    # publish after a restart would time out.
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    bus = Bus(server.url)
    await bus.connect()
    try:
        assert await bus.publish(run_event("before")) is False
        server.kill()
        server.start()  # same port and store

        async def acknowledged() -> bool:
            try:
                await bus.publish(run_event("after"), timeout=0.5)  # stored, or a retry's dup
            except BusUnavailable:
                return False
            return True

        await eventually(acknowledged, timeout=20)
        assert await bus.publish(run_event("before")) is True  # the store survived
    finally:
        await bus.close()
        server.stop()


async def test_publish_raises_bus_unavailable_when_nats_is_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    bus = Bus(server.url)
    await bus.connect()
    server.kill()
    try:
        try:
            await bus.publish(run_event(), timeout=0.5)
        except BusUnavailable:
            pass
        else:
            raise AssertionError("publish succeeded with NATS down")
        # The timed-out publish gave its place in the in-flight window back.
        assert bus.acks.pending == 0
    finally:
        await bus.close()


async def test_a_handler_failing_on_the_data_dead_letters_at_once_and_the_rest_goes_on(
    bus: Bus,
) -> None:
    for i in range(3):
        await bus.publish(run_event(f"e{i}"))
    consumer = ConsumerSpec(stream=INGEST.name, durable="data-error",
                            filter_subjects=[RunReported.subject_filter()], backoff=Backoff.of(30))
    handled: list[str] = []
    poisoned: list[int] = []

    async def handle(event: Event) -> None:
        if event.event_id == "e1":
            poisoned.append(1)
            raise OverflowError("date value out of range")
        handled.append(event.event_id)

    async def done() -> bool:
        return len(handled) == 2 and await stream_count(bus, DEAD_LETTERS.name) == 1

    await consume_until(bus, consumer, handle, done)
    assert handled == ["e0", "e2"] and poisoned == [1]  # tried once, not retried
    msg = await bus.js.get_last_msg(DEAD_LETTERS.name, "backstop.dlq.data-error")
    assert msg.headers is not None
    assert msg.headers["Backstop-Dead-Letter-Reason"] == (
        "permanent failure: OverflowError: date value out of range")
    info = await bus.js.consumer_info(INGEST.name, "data-error")
    assert info.num_ack_pending == 0 and info.num_redelivered == 0
